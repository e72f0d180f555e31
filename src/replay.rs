//! `weir replay`: read capture files in order as one capture, run them through a worker, and
//! print a closing summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_capture::{FileSource, PacketSource};

use crate::CommonArgs;
use crate::config::Config;
use crate::pipeline::Pipeline;

pub fn run(paths: &[PathBuf], common: &CommonArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    // Open the input first: a bad path must fail before anything is written.
    let mut source = FileSource::open(paths).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = common.out.clone().unwrap_or_else(|| config.output.dir.clone());
    crate::output::create_output_dir(&out)?;
    let mut pipeline = Pipeline::start(config, &out, common.overwrite, false, false)?;

    let progress = (!quiet && std::io::stderr().is_terminal()).then(|| progress_bar(source.total_bytes()));
    let started = Instant::now();
    let mut last_tick = 0u64;
    let mut read_error = None;
    loop {
        let packet = match source.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                // What was read before the error is still flushed and logged.
                read_error = Some(anyhow::anyhow!("{e}"));
                break;
            }
        };
        let (ts, link) = (packet.ts, packet.link);
        pipeline.process(ts, link, packet.data)?;
        if let Some(bar) = &progress {
            let n = pipeline.packets();
            if n - last_tick >= 4096 {
                last_tick = n;
                bar.set_position(source.bytes_read());
            }
        }
    }
    if let Some(e) = read_error {
        pipeline.finish(Duration::ZERO, Duration::ZERO).ok();
        return Err(e);
    }
    let summary = pipeline.finish(
        Duration::from_secs(config.sandbox.replay_wait),
        Duration::from_secs(config.central.replay_wait),
    )?;
    if let Some(report) = &summary.sandbox {
        let s = &report.stats;
        eprintln!(
            "weir: sandbox: {} submitted, {} duplicate, {} skipped by policy, {} verdicts ({} malicious), {} still pending in the spool",
            s.submitted,
            s.duplicate,
            s.skipped_policy,
            s.verdicts,
            s.malicious,
            report.pending.len()
        );
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    for warning in source.warnings() {
        eprintln!("weir: warning: {warning}");
    }
    if source.suppressed_warnings() > 0 {
        eprintln!("weir: warning: {} more warnings not shown", source.suppressed_warnings());
    }
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        let s = &summary.totals.stats;
        let mbits = if secs > 0.0 { s.bytes as f64 * 8.0 / secs / 1e6 } else { 0.0 };
        eprintln!(
            "weir: {} packets, {} bytes, {} flows, {} alerts, {} anomalies in {:.2} s ({:.1} Mbit/s, {} worker{}); outputs in {}",
            s.packets,
            s.bytes,
            s.flows_logged,
            s.alerts,
            s.anomaly_total(),
            secs,
            mbits,
            config.capture.workers,
            if config.capture.workers == 1 { "" } else { "s" },
            out.display()
        );
        if config.exclusions != Default::default() {
            eprintln!("weir: excluded from scanning: {} flows, {} artifacts", s.excluded_flows, s.excluded_artifacts);
        }
        let records: Vec<String> = summary.totals.eve.iter().map(|(t, n)| format!("{n} {t}")).collect();
        eprintln!("weir: eve.json records: {}", records.join(", "));
    }
    Ok(())
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
