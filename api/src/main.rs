//! DataPress API: entry point wiring the command line to config, server and probes.

mod access_log;
mod cli;
mod config;
mod connections;
mod healthcheck;
mod http_metrics;
mod listener;
#[cfg(all(
    target_arch = "x86_64",
    any(test, all(target_env = "musl", feature = "memcpy"))
))]
mod memcopy;
mod metrics;
mod readiness;
mod route;
mod routes;
mod secret;
mod server;
mod telemetry;

use std::process::ExitCode;

use cli::Command;
use config::Config;

// Chosen by measurement against musl's own malloc (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for unusable configuration or command line, before anything listens.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("datapress-api: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("datapress-api {} ({})", routes::VERSION, routes::REVISION);
            ExitCode::SUCCESS
        }
        Command::CheckConfig => match Config::load() {
            Ok(config) => match serde_json::to_string_pretty(&config) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, EXIT_CONFIG),
            },
            Err(e) => fail(&e, EXIT_CONFIG),
        },
        Command::Healthcheck { url } => {
            let url = match url {
                Some(url) => url,
                None => match Config::load_listen() {
                    Ok(listen) => format!("http://{}/health", config::local_probe_addr(listen)),
                    Err(e) => return fail(&e, EXIT_CONFIG),
                },
            };
            match healthcheck::probe(&url) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("healthcheck {url}: {e}"), 1),
            }
        }
        Command::Serve => match Config::load() {
            Ok(config) => match server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e, 1),
            },
            Err(e) => fail(&e, EXIT_CONFIG),
        },
    }
}

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("datapress-api: {error}");
    ExitCode::from(code)
}
