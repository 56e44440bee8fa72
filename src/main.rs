//! The `sluice` command line: run an agent, validate a config, list components.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::config::{self, AgentConfig, LogEncoding, LogLevel};
use std::path::PathBuf;
use std::process::ExitCode;

// Decoded OTLP is many small allocations freed on other threads than made
// them; mimalloc keeps that cheap and returns memory instead of fragmenting.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A telemetry pipeline agent: OTLP in, sampling and volume control, OTLP/Loki/Prometheus out"
)]
struct Cli {
    /// Config file in the OpenTelemetry Collector's format. Without it, the
    /// embedded default config runs (OTLP in on 4317/4318, debug out).
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Check a config without starting anything; exits non-zero if it is invalid.
    Validate,
    /// List the built-in receivers, processors, exporters and extensions.
    Components,
    /// Print the embedded default config.
    DefaultConfig,
}

fn load(path: Option<&PathBuf>) -> Result<AgentConfig, config::ConfigErrors> {
    match path {
        Some(p) => config::load_file(p),
        None => config::load(config::DEFAULT_CONFIG, &|k| std::env::var(k).ok()),
    }
}

fn source_name(path: Option<&PathBuf>) -> String {
    path.map_or_else(|| "embedded default config".to_string(), |p| p.display().to_string())
}

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them on its arenas; every request and batch buffer then faults in, and the
/// kernel zeroes, a whole 2 MiB page each time mimalloc reuses memory it
/// returned. Profiled on scenario 1 of benches/e2e.sh that zeroing was 27 %
/// of the agent's CPU; without huge pages sluice used 15 % less CPU per span.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Components => {
            print_components();
            ExitCode::SUCCESS
        }
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Validate => match load(cli.config.as_ref()) {
            Ok(cfg) => {
                println!("{}: valid ({} pipelines)", source_name(cli.config.as_ref()), cfg.service.pipelines.len());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{}: {errors}", source_name(cli.config.as_ref()));
                ExitCode::from(1)
            }
        },
        Command::Run => {
            let cfg = match load(cli.config.as_ref()) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    eprint!("{}: {errors}", source_name(cli.config.as_ref()));
                    return ExitCode::from(1);
                }
            };
            init_logging(cfg.service.telemetry.logs.level, cfg.service.telemetry.logs.encoding);
            match run(cfg, source_name(cli.config.as_ref())) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(2),
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("sluice: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn print_components() {
    use sluice::config::registry::{ComponentKind, COMPONENTS};
    for kind in [ComponentKind::Receiver, ComponentKind::Processor, ComponentKind::Exporter, ComponentKind::Extension] {
        println!("{}:", kind.section());
        for c in COMPONENTS.iter().filter(|c| c.kind == kind) {
            let aliases =
                if c.aliases.is_empty() { String::new() } else { format!(" (alias {})", c.aliases.join(", ")) };
            let signals: Vec<&str> = c.signals.iter().map(|s| s.as_str()).collect();
            let signals = if signals.is_empty() { String::new() } else { format!(" [{}]", signals.join(", ")) };
            println!("  {}{aliases}{signals}: {}", c.name, c.description);
        }
    }
}

fn init_logging(level: LogLevel, encoding: LogEncoding) {
    use tracing_subscriber::EnvFilter;
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // SLUICE_LOG overrides the config, e.g. SLUICE_LOG=sluice::exporters=debug.
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match encoding {
        LogEncoding::Json => builder.json().init(),
        LogEncoding::Console => builder.init(),
    }
}

/// Runs until SIGTERM or SIGINT; returns whether shutdown drained everything.
fn run(cfg: AgentConfig, source: String) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let agent = sluice::pipeline::start(&cfg).await.context("cannot start")?;
        tracing::info!(config = %source, version = env!("CARGO_PKG_VERSION"), "sluice started");
        wait_for_signal().await?;
        tracing::info!("shutting down: no longer accepting data, draining pipelines and queues");
        let report = agent.shutdown().await;
        if report.clean {
            tracing::info!("shutdown complete");
        }
        Ok(report.clean)
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    // A second signal while draining means "stop now".
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("sluice: second signal, exiting without draining");
        std::process::exit(130);
    });
    Ok(())
}
