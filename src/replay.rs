//! `weir replay`: read capture files in order as one capture, run them through a worker, and
//! print a closing summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use weir_capture::{FileSource, PacketSource};

use crate::config::Config;
use crate::output::EveWriter;
use crate::worker::Worker;
use crate::{CommonArgs, build};

pub fn run(paths: &[PathBuf], common: &CommonArgs, config: &Config, quiet: bool) -> anyhow::Result<()> {
    // Open the input first: a bad path must fail before anything is written.
    let mut source = FileSource::open(paths).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = common.out.clone().unwrap_or_else(|| config.output.dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create output directory {}", out.display()))?;
    let eve = EveWriter::create(&out, common.overwrite, &config.output.eve_types)?;
    let shared = build::shared_sets(config)?;
    let mut worker: Worker = build::worker(config, &out, eve, &shared)?;

    let progress = (!quiet && std::io::stderr().is_terminal()).then(|| progress_bar(source.total_bytes()));
    let started = Instant::now();
    let mut last_tick = 0u64;
    loop {
        let packet = match source.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                // What was read before the error is still flushed and logged.
                worker.finish(std::time::Duration::ZERO).ok();
                return Err(anyhow::anyhow!("{e}"));
            }
        };
        let (ts, link) = (packet.ts, packet.link);
        worker.process(ts, link, packet.data).context("writing outputs")?;
        if let Some(bar) = &progress {
            let n = worker.stats().packets;
            if n - last_tick >= 4096 {
                last_tick = n;
                bar.set_position(source.bytes_read());
            }
        }
    }
    let sandbox = worker.finish(std::time::Duration::from_secs(config.sandbox.replay_wait)).context("writing outputs")?;
    if let Some(link) = worker.take_central() {
        crate::deliver_to_central(link, config.central.replay_wait);
    }
    if let Some(report) = sandbox {
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
        let s = worker.stats();
        let mbits = if secs > 0.0 { s.bytes as f64 * 8.0 / secs / 1e6 } else { 0.0 };
        eprintln!(
            "weir: {} packets, {} bytes, {} flows, {} alerts, {} anomalies in {:.2} s ({:.1} Mbit/s); outputs in {}",
            s.packets,
            s.bytes,
            s.flows_logged,
            s.alerts,
            s.anomaly_total(),
            secs,
            mbits,
            out.display()
        );
        if config.exclusions != Default::default() {
            eprintln!("weir: excluded from scanning: {} flows, {} artifacts", s.excluded_flows, s.excluded_artifacts);
        }
        let records: Vec<String> = worker.eve_counts().iter().map(|(t, n)| format!("{n} {t}")).collect();
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
