//! The `sluice` command line: run an agent, validate a config, list components.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::service::{self as config, AgentConfig, ConfigSources, LogEncoding, LogLevel};
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
    /// Config in the OpenTelemetry Collector's format: a file path, `file:PATH`
    /// or `yaml:INLINE` (e.g. `yaml:exporters::debug::verbosity: detailed`).
    /// Repeat it to merge several, later over earlier (mappings merged, lists
    /// replaced), as the Collector does. Without it, the embedded default
    /// config runs (OTLP in on 4317/4318, debug out).
    #[arg(long, short = 'c', global = true)]
    config: Vec<String>,

    /// Sets one value over the config, `key::path=value` (the value is YAML),
    /// e.g. `--set processors::batch::timeout=2s`. Repeatable; applied last.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// Reload the config file whenever its content changes (checked every
    /// second), as on SIGHUP.
    #[arg(long, global = true)]
    watch_config: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Check a config without starting anything; exits non-zero if it is invalid.
    Validate,
    /// List the built-in receivers, processors, exporters, connectors and
    /// extensions;
    /// with a TYPE, its settings: type, default, allowed values, description.
    Components {
        /// A component type or alias (`otlp`, `tail_sampling`).
        #[arg(value_name = "TYPE")]
        type_name: Option<String>,
        /// Print the TYPE's settings as JSON Schema (for editors and tools).
        #[arg(long, requires = "type_name")]
        schema: bool,
        /// Print the README's component table, or with `--reference` every
        /// component's settings, as Markdown.
        #[arg(long, conflicts_with = "type_name")]
        markdown: bool,
        /// With `--markdown`: every component's settings (docs/components.md).
        #[arg(long, requires = "markdown")]
        reference: bool,
    },
    /// Print the effective config: every `--config` and `--set` merged,
    /// variables expanded, each component's defaults filled in.
    PrintConfig {
        /// `redacted` (default) prints passwords, tokens, keys and header
        /// values as [REDACTED]; `unredacted` prints them.
        #[arg(long, value_enum, default_value = "redacted")]
        mode: PrintMode,
    },
    /// Print the embedded default config.
    DefaultConfig,
    /// A terminal view of a running agent, read from its `/metrics`: items
    /// in/out per second, refusals, drops and queue fill per component.
    /// With `--config` (the agent's), rows name their pipelines and the page
    /// is found at the config's telemetry address. Ctrl-C quits.
    Top {
        /// The agent's metrics page; default: the config's
        /// `service.telemetry.metrics` address.
        #[arg(long)]
        url: Option<String>,
        /// Refresh interval, e.g. `1s`, `500ms`.
        #[arg(long, default_value = "1s")]
        interval: String,
        /// Print one frame (two reads one interval apart) and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PrintMode {
    Redacted,
    Unredacted,
}

fn load(sources: &ConfigSources) -> Result<AgentConfig, sluice::config::ConfigErrors> {
    config::load_sources(sources)
}

fn source_name(sources: &ConfigSources) -> String {
    sources.describe()
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
    let sources = ConfigSources { configs: cli.config.clone(), sets: cli.set.clone() };
    match cli.command.unwrap_or(Command::Run) {
        Command::Components { type_name, schema, markdown, reference } => {
            print_components(type_name.as_deref(), schema, markdown, reference)
        }
        Command::Top { url, interval, once } => top(&sources, url, &interval, once),
        Command::PrintConfig { mode } => {
            match sluice::service::catalog::effective_config(&sources, mode == PrintMode::Redacted) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprint!("{}: {errors}", source_name(&sources));
                    ExitCode::from(1)
                }
            }
        }
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Validate => match load(&sources) {
            Ok(cfg) => {
                println!("{}: valid ({} pipelines)", source_name(&sources), cfg.service.pipelines.len());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{}: {errors}", source_name(&sources));
                ExitCode::from(1)
            }
        },
        Command::Run => {
            let cfg = match load(&sources) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    eprint!("{}: {errors}", source_name(&sources));
                    return ExitCode::from(1);
                }
            };
            let log_filter = init_logging(cfg.service.telemetry.logs.level, cfg.service.telemetry.logs.encoding);
            let name = source_name(&sources);
            let reload = Reload { sources, watch: cli.watch_config, log_filter };
            match run(cfg, name, reload) {
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

/// `sluice top`: the pipelines from the config (when one is given), the page
/// from `--url` or the config's telemetry address.
fn top(sources: &ConfigSources, url: Option<String>, interval: &str, once: bool) -> ExitCode {
    use sluice::top::{Kind, Layout};
    let interval = match sluice::config::duration::parse_duration(interval) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            eprintln!("sluice top: --interval must be above zero");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("sluice top: --interval {interval:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut layout = Layout::default();
    let mut endpoint = "127.0.0.1:8888".to_string();
    if !sources.configs.is_empty() {
        match load(sources) {
            Ok(cfg) => {
                endpoint = cfg.service.telemetry.metrics.endpoint();
                // A connector is listed among receivers and exporters.
                let is_connector = |id: &String| cfg.connectors.keys().any(|c| c.to_string() == *id);
                for (pid, p) in &cfg.service.pipelines {
                    let pid = pid.to_string();
                    let (connectors, receivers): (Vec<String>, Vec<String>) =
                        p.receivers.iter().cloned().partition(is_connector);
                    let (to_connectors, exporters): (Vec<String>, Vec<String>) =
                        p.exporters.iter().cloned().partition(is_connector);
                    layout.add(&pid, Kind::Receiver, &receivers);
                    layout.add(&pid, Kind::Processor, &p.processors);
                    layout.add(&pid, Kind::Exporter, &exporters);
                    layout.add(&pid, Kind::Connector, &connectors);
                    layout.add(&pid, Kind::Connector, &to_connectors);
                }
            }
            Err(errors) => {
                eprint!("{}: {errors}", source_name(sources));
                return ExitCode::from(1);
            }
        }
    }
    // An agent listening on every address is read on loopback.
    let endpoint = endpoint.replace("0.0.0.0:", "127.0.0.1:").replace("[::]:", "[::1]:");
    let url = url.unwrap_or_else(|| format!("http://{endpoint}/metrics"));
    match sluice::top::run(&url, &layout, interval, once) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice top: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_components(type_name: Option<&str>, schema: bool, markdown: bool, reference: bool) -> ExitCode {
    use sluice::service::catalog;
    let Some(type_name) = type_name else {
        match (markdown, reference) {
            (true, true) => print!("{}", catalog::reference_markdown()),
            (true, false) => print!("{}", catalog::readme_table()),
            _ => print!("{}", catalog::component_list()),
        }
        return ExitCode::SUCCESS;
    };
    if schema {
        let schemas: Vec<serde_json::Value> = sluice::components::described()
            .filter(|(m, _)| m.is_named(type_name))
            .map(|(_, settings)| (settings.schema)())
            .collect();
        if let [one] = schemas.as_slice() {
            println!("{}", serde_json::to_string_pretty(one).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
        if !schemas.is_empty() {
            println!("{}", serde_json::to_string_pretty(&schemas).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
    } else if let Some(text) = catalog::component_text(type_name) {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    let names: Vec<&str> =
        sluice::components::all().flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied())).collect();
    let hint = sluice::config::suggest::did_you_mean(type_name, names.iter().copied())
        .unwrap_or_else(|| "`sluice components` lists them".to_string());
    eprintln!("sluice: no component type \"{type_name}\"; {hint}");
    ExitCode::from(1)
}

/// How the log filter is changed by a reload.
type LogFilter = Option<LogFilterHandle>;

/// The log filter: the configured level, with `SLUICE_LOG`'s directives
/// added (`sluice::exporters=debug` raises that module and keeps everything
/// else at the configured level). A bare level in `SLUICE_LOG` (`debug`)
/// replaces the configured one.
fn level_filter(level: LogLevel, extra: Option<&str>) -> tracing_subscriber::EnvFilter {
    let base = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let extra = extra.map(str::trim).filter(|e| !e.is_empty());
    let directives = match extra {
        Some(e) if e.split(',').any(|d| !d.contains('=') && !d.trim().is_empty()) => e.to_string(),
        Some(e) => format!("{base},{e}"),
        None => base.to_string(),
    };
    tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("sluice: SLUICE_LOG={directives:?} is not a log filter ({e}); logging at {base}");
        tracing_subscriber::EnvFilter::new(base)
    })
}

fn init_logging(level: LogLevel, encoding: LogEncoding) -> LogFilter {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::reload;
    let extra = std::env::var("SLUICE_LOG").ok();
    let (filter, reload_handle) = reload::Layer::new(level_filter(level, extra.as_deref()));
    // Colour only for a person at a terminal, never into a file or a pipe.
    let ansi = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    match encoding {
        LogEncoding::Json => tracing_subscriber::registry().with(filter).with(fmt.json()).init(),
        LogEncoding::Console => tracing_subscriber::registry().with(filter).with(fmt).init(),
    }
    Some(LogFilterHandle { handle: reload_handle, extra })
}

/// Changes the log level on reload, keeping `SLUICE_LOG`'s directives.
struct LogFilterHandle {
    handle: tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
    extra: Option<String>,
}

/// Where a reload reads its config from, and what it changes besides the agent.
struct Reload {
    /// No `--config`: the embedded default config runs, and there is no file to re-read.
    sources: ConfigSources,
    watch: bool,
    log_filter: LogFilter,
}

impl Reload {
    /// Reads, validates and applies the config file; the running config
    /// stays whenever the new one is invalid or cannot be applied.
    async fn apply(
        &self,
        agent: &mut sluice::pipeline::RunningAgent,
        running: &mut AgentConfig,
        metrics: &sluice::telemetry::ConfigReloadMetrics,
        trigger: &str,
    ) {
        if self.sources.configs.is_empty() {
            tracing::warn!(
                trigger,
                "sluice runs its embedded default config; there is no file to reload (start it with --config)"
            );
            return;
        }
        let source = self.sources.describe();
        let next = match config::load_sources(&self.sources) {
            Ok(c) => c,
            Err(errors) => {
                metrics.record(false);
                tracing::error!(trigger, "config reload failed; the running config stays: {source}: {errors}");
                return;
            }
        };
        if next.service.telemetry.logs.level != running.service.telemetry.logs.level {
            if let Some(f) = &self.log_filter {
                let _ = f.handle.reload(level_filter(next.service.telemetry.logs.level, f.extra.as_deref()));
            }
        }
        match agent.reload(&next).await {
            Ok(summary) => {
                metrics.record(true);
                if summary.unchanged() {
                    tracing::info!(trigger, config = %source, kept = summary.kept, "config unchanged; nothing to reload");
                } else {
                    tracing::info!(
                        trigger,
                        config = %source,
                        kept = summary.kept,
                        added = ?summary.added,
                        replaced = ?summary.replaced,
                        removed = ?summary.removed,
                        "config reloaded"
                    );
                }
                for setting in &summary.needs_restart {
                    tracing::warn!(setting = %setting, "this change applies at the next start; the running value stays");
                }
                *running = next;
            }
            Err(sluice::pipeline::ReloadError::NotApplied(e)) => {
                metrics.record(false);
                tracing::error!(trigger, "config reload failed; the running config stays: {source}: {e}");
            }
            Err(e @ sluice::pipeline::ReloadError::Partial(_)) => {
                metrics.record(false);
                tracing::error!(trigger, "config reloaded with errors: {source}: {e}");
                *running = next;
            }
        }
    }
}

/// The content of the watched files, if they can all be read now (a
/// Kubernetes ConfigMap update swaps a symlink, and a file can be missing for
/// a moment).
fn read_watched(files: &[PathBuf]) -> Option<Vec<u8>> {
    if files.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(f).ok()?);
        all.push(0);
    }
    Some(all)
}

/// Runs until SIGTERM or SIGINT, reloading on SIGHUP (and on file changes
/// with `--watch-config`); returns whether shutdown drained everything.
fn run(cfg: AgentConfig, source: String, reload: Reload) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let mut agent = sluice::pipeline::start(&cfg).await.context("cannot start")?;
        let metrics = sluice::telemetry::ConfigReloadMetrics::new(&agent.registry);
        tracing::info!(config = %source, version = env!("CARGO_PKG_VERSION"), watch_config = reload.watch, "sluice started");
        let mut running = cfg;
        let watched = reload.sources.files();
        let mut seen = read_watched(&watched);
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    seen = read_watched(&watched);
                    reload.apply(&mut agent, &mut running, &metrics, "SIGHUP").await;
                }
                _ = ticker.tick(), if reload.watch && !watched.is_empty() => {
                    let now = read_watched(&watched);
                    if now.is_some() && now != seen {
                        seen = now;
                        reload.apply(&mut agent, &mut running, &metrics, "config file changed").await;
                    }
                }
            }
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
        tracing::info!("shutting down: no longer accepting data, draining pipelines and queues");
        let report = agent.shutdown().await;
        if report.clean {
            tracing::info!("shutdown complete");
        }
        Ok(report.clean)
    })
}
