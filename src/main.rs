//! The docker-cri binary: parse flags, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use docker_cri::config::{Cli, Command, Config};
use docker_cri::{commands, logging, server};

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
    for warning in &config.compat_warnings {
        tracing::warn!("{warning}");
    }
    let result = match cli.command {
        None | Some(Command::Serve) => server::serve(config, server::shutdown_signal()).await,
        Some(Command::PauseImage { tag, if_missing }) => {
            commands::pause_image(config, tag.as_deref(), if_missing)
                .await
                .map(|id| println!("{id}"))
        }
        Some(Command::Check {
            cgroup_driver,
            pod_log_directory,
        }) => {
            let report =
                commands::check(config, cgroup_driver.as_deref(), &pod_log_directory).await;
            print!("{report}");
            return if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
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
