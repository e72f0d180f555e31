//! `weir live`: capture from an interface with one worker until SIGINT or SIGTERM, then end every
//! flow, flush the outputs and exit 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use weir_capture::live::{LiveOptions, LivePoll};
use weir_capture::LiveSource;
use weir_core::Timestamp;

use crate::config::Config;
use crate::output::EveWriter;
use crate::{CommonArgs, build};

fn wall_clock() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Timestamp::from_secs_nanos(d.as_secs(), u64::from(d.subsec_nanos()))
}

pub fn run(interface: Option<String>, common: &CommonArgs, config: &Config) -> anyhow::Result<()> {
    let interface = interface
        .or_else(|| config.capture.interface.clone())
        .context("no interface: give --interface or set [capture] interface")?;
    let mut options = LiveOptions::new(interface.clone());
    options.snaplen = config.capture.snaplen;
    options.filter = config.capture.bpf.clone();
    // Opening needs CAP_NET_RAW; the source drops the other capabilities right after, before any
    // other thread exists.
    let mut source = LiveSource::open(options).map_err(|e| anyhow::anyhow!("{e}"))?;

    let stop = source.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("cannot install the SIGINT/SIGTERM handler")?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop.stop();
        }
    });

    let out = common.out.clone().unwrap_or_else(|| config.output.dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create output directory {}", out.display()))?;
    let eve = EveWriter::create(&out, common.overwrite, &config.output.eve_types)?;
    let shared = build::shared_sets(config)?;
    let mut worker = build::worker_for(config, &out, eve, &shared, true)?;
    let _reloader = crate::reload::start(crate::reload::ConfigSource::of(common), shared.clone())?;
    eprintln!("weir: capturing on {interface}; SIGINT or SIGTERM ends the run");

    loop {
        match source.poll().map_err(|e| anyhow::anyhow!("{e}"))? {
            LivePoll::Packet(p) => {
                let (ts, link) = (p.ts, p.link);
                worker.process(ts, link, p.data).context("writing outputs")?;
            }
            // Idle flows still time out when the link is quiet.
            LivePoll::Idle => worker.advance(wall_clock()).context("writing outputs")?,
            LivePoll::Stopped => break,
        }
        for warning in source.take_warnings() {
            eprintln!("weir: warning: {warning}");
        }
    }
    worker.finish(Duration::from_secs(config.sandbox.replay_wait)).context("writing outputs")?;
    if let Some(link) = worker.take_central() {
        crate::deliver_to_central(link, config.central.replay_wait);
    }
    let s = worker.stats();
    let kernel = source.kernel_stats().ok();
    eprintln!(
        "weir: {} packets, {} flows, {} alerts, {} anomalies; kernel dropped {}, interface dropped {}; outputs in {}",
        s.packets,
        s.flows_logged,
        s.alerts,
        s.anomaly_total(),
        kernel.map_or(0, |k| k.kernel_dropped),
        kernel.map_or(0, |k| k.interface_dropped),
        out.display()
    );
    Ok(())
}
