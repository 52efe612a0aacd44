//! The `ticketing` binary: `ticketing serve [--config FILE]`, and `ticketing shard export` /
//! `import` for moving a shard between stopped nodes (and backups).

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
    /// Moves shards between stopped nodes (README "Running a cluster"), and backs them up.
    #[command(subcommand)]
    Shard(ShardCommand),
}

#[derive(Subcommand)]
enum ShardCommand {
    /// Writes one shard of this node's data dir to a file.
    Export {
        #[arg(long)]
        shard: u32,
        #[arg(long)]
        out: PathBuf,
        /// Also delete the shard from this data dir (a move, not a backup).
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Loads a shard file into this node's data dir.
    Import {
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let config = match &command {
        Command::Serve { config }
        | Command::Shard(ShardCommand::Export { config, .. })
        | Command::Shard(ShardCommand::Import { config, .. }) => config.clone(),
    };
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ticketing: {e}");
            return ExitCode::from(2);
        }
    };
    let json = settings.log.format == LogFormat::Json;
    let exporting =
        matches!(command, Command::Serve { .. }).then_some((&settings.telemetry, settings.cluster.node_id.as_str()));
    let telemetry = match ticketing::observability::init_logging(&settings.log.level, json, exporting) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("ticketing: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Shard(shard) = command {
        use ticketing::app::shard_move;
        let done = actix_web::rt::System::new().block_on(async {
            match shard {
                ShardCommand::Export { shard, out, remove, .. } => {
                    shard_move::export(&settings, shard, &out, remove).await
                }
                ShardCommand::Import { input, .. } => shard_move::import(&settings, &input).await,
            }
        });
        return match done {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ticketing: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let served = actix_web::rt::System::new().block_on(serve(settings));
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match served {
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
