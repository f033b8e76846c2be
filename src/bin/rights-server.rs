//! `rights-server`: parses arguments and runs the licensing server.

use clap::Parser;
use rightsfs::server::config::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIGHTS_SERVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour for people at a terminal only: a log file or journal
        // would keep the escape codes as noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(args) => rightsfs::server::serve(*args).await,
        Command::Openapi => {
            print!("{}", rightsfs::server::openapi_document());
            Ok(())
        }
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rights-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
