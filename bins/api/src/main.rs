use clap::Parser;

/// The haven HTTP API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Apply pending database migrations before serving.
    #[arg(long)]
    migrate: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = haven_api::config::ApiConfig::load()?;
    haven_service::telemetry::init(config.common.log_format);
    if args.migrate {
        haven_api::migrate(&config).await?;
    }
    let listener = std::net::TcpListener::bind(config.addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on HAVEN_API_ADDR={}: {e}", config.addr))?;
    haven_api::run(config, listener, haven_service::shutdown::signal()).await
}
