//! The `ticketing` binary: `ticketing serve [--config FILE]`.

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use ticketing::settings::LogFormat;
use ticketing::{Application, Settings};

#[derive(Parser)]
#[command(name = "ticketing", version, about = "Ticket marketplace node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a node until SIGTERM or SIGINT.
    Serve {
        /// A TOML file layered over config/default.toml (env vars still win).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Command::Serve { config } = Cli::parse().command;
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ticketing: {e}");
            return ExitCode::from(2);
        }
    };
    ticketing::observability::init_logging(&settings.log.level, settings.log.format == LogFormat::Json);
    match actix_web::rt::System::new().block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticketing: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone()).await?;
    // Tests and scripts read this line to learn the port when started on port 0.
    println!("listening on http://{}:{}", settings.http.addr.ip(), app.port());
    tracing::info!(port = app.port(), node = %settings.cluster.node_id, "serving");
    app.run_until_stopped().await?;
    Ok(())
}
