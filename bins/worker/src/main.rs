#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = haven_worker::config::WorkerConfig::load()?;
    haven_service::telemetry::init(config.common.log_format);
    let listener = std::net::TcpListener::bind(config.addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on HAVEN_WORKER_ADDR={}: {e}", config.addr))?;
    haven_worker::run(config, listener, haven_service::shutdown::signal()).await
}
