use clap::Parser;

/// The haven worker: drains the outboxes (webhooks, fraud alerts, inbound relays), monitors
/// the chain and mints rewards; serves /health, /ready, /jobs and /metrics on
/// HAVEN_WORKER_ADDR. Configured by the environment (see the README).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // --help and --version answer here, before anything is read or connected
    let Args {} = Args::parse();
    let config = haven_worker::config::WorkerConfig::load()?;
    haven_service::telemetry::init(config.common.log_format);
    let listener = std::net::TcpListener::bind(config.addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on HAVEN_WORKER_ADDR={}: {e}", config.addr))?;
    haven_worker::run(config, listener, haven_service::shutdown::signal()).await
}
