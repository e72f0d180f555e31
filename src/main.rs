//! `weir`: the command line. Parses arguments, loads the config and hands over to the commands.
//! Errors reach the user as one line naming the file and position, with a non-zero exit.

mod build;
mod central;
mod config;
mod detection;
mod exception;
mod icap;
mod inspect;
mod live;
mod output;
mod pipeline;
mod replay;
mod reload;
mod rules;
mod stats;
mod swap;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use config::Config;

#[derive(Parser)]
#[command(name = "weir", version, about = "Network sensor and sandbox dispatcher")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Configuration file (TOML); built-in defaults apply without one.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Rule files; replace the ones named in the config.
    #[arg(long = "rules", short = 'S', value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Output directory (default: [output] dir, else ./weir-out).
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Start eve.json afresh instead of appending to it.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Read pcap/pcapng files or directories of them, in order, as one capture.
    Replay {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
        /// No progress bar and no summary.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Capture from a live interface until SIGINT/SIGTERM.
    Live {
        #[arg(long, short = 'i', value_name = "IF")]
        interface: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Serve ICAP (RFC 3507) REQMOD/RESPMOD for a web proxy.
    Icap {
        #[arg(long, value_name = "ADDR")]
        listen: String,
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, short = 'o', value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run the reference Central Node receiver (protocol v1).
    Central {
        #[arg(long, value_name = "ADDR")]
        listen: String,
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// CA of the sensors' client certificates (default DATA/tls/ca.pem).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// The receiver's certificate (default DATA/tls/cn.pem).
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// The receiver's private key (default DATA/tls/cn.key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Validate the configuration and the rule and feed files it names.
    CheckConfig {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Rule file tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Parse rule files; print each rejected rule and a summary line.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Exit non-zero when any rule is rejected, not only when a file cannot be read.
        #[arg(long)]
        strict: bool,
    },
}

/// End of a run: waits up to `wait_secs` for the Central Node to take what is spooled, then says
/// what was delivered and what stays in the spool for the next run.
pub fn deliver_to_central(link: weir_sensor_link::Link, wait_secs: u64) {
    if let Err(e) = link.flush() {
        eprintln!("weir: warning: Central Node spool: {e}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
    while link.status().pending() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = link.shutdown();
    eprintln!("weir: Central Node: {} items still spooled for delivery", status.pending());
}

/// Loads the config file, or the built-in defaults when none is named.
fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}")),
        None => Ok(Config::default()),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => {
            let path = config.unwrap_or_else(|| PathBuf::from("weir.toml"));
            let cfg = match Config::load(&path) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("{e}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
            };
            let mut errors: Vec<String> = cfg
                .referenced_files()
                .into_iter()
                .filter(|f| !f.is_file())
                .map(|f| format!("{}: referenced file {} does not exist", path.display(), f.display()))
                .collect();
            errors.extend(rules::check_config(&cfg));
            if let Err(e) = build::exclusions(&cfg) {
                errors.push(format!("{}: {e:#}", path.display()));
            }
            if let Err(e) = build::reputation(&cfg) {
                errors.push(format!("{e:#}"));
            }
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                println!("{}: ok", path.display());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Replay { paths, mut common, quiet } => {
            let mut config = load_config(common.config.as_ref())?;
            if !common.rules.is_empty() {
                config.detect.rules = std::mem::take(&mut common.rules);
            }
            replay::run(&paths, &common, &config, quiet)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Live { interface, mut common } => {
            let mut config = load_config(common.config.as_ref())?;
            if !common.rules.is_empty() {
                config.detect.rules = std::mem::take(&mut common.rules);
            }
            live::run(interface, &common, &config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Icap { listen, config: path, out } => {
            let config = load_config(path.as_ref())?;
            let source = reload::ConfigSource { path, rules_override: Vec::new() };
            icap::run(Some(&listen), out, &config, source)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Central { listen, data, ca, cert, key } => {
            central::run(&listen, &data, central::TlsFiles { ca, cert, key })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command: RulesCommand::Check { files, strict } } => {
            Ok(if rules::check(&files, strict)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weir: {e:#}");
            ExitCode::FAILURE
        }
    }
}
