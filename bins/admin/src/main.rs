use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = haven_admin::Cli::parse();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    match haven_admin::run(cli, &mut stdin.lock(), &mut stdout).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(haven_admin::EXIT_FAILURE)
        }
    }
}
