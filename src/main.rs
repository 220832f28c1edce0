//! The docker-cri binary: parse flags, set up logging, run.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use docker_cri::config::{Cli, Command, Config};
use docker_cri::runtime::Runtime;
use docker_cri::{logging, server};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docker-cri: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log_level, config.log_format);
    let result = match cli.command {
        None | Some(Command::Serve) => server::serve(config, server::shutdown_signal()).await,
        Some(Command::PauseImage { tag }) => match Runtime::new(Arc::new(config)) {
            Ok(runtime) => {
                let docker = runtime.docker();
                match docker.wait_connected(docker.call_timeout()).await {
                    Ok(()) => runtime.build_pause_image(tag.as_deref()).await.map(|id| {
                        println!("{id}");
                    }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("docker-cri: {e}");
            ExitCode::FAILURE
        }
    }
}
