//! `weir live`: capture from an interface with `[capture] workers` workers until SIGINT or SIGTERM, then end every
//! flow, flush the outputs and exit 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use weir_capture::live::{LiveOptions, LivePoll};
use weir_capture::LiveSource;
use weir_core::Timestamp;

use crate::CommonArgs;
use crate::config::Config;
use crate::icap::IcapService;
use crate::pipeline::Pipeline;

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
    crate::output::create_output_dir(&out)?;
    let mut pipeline = Pipeline::start(config, &out, common.overwrite, true, config.icap.enabled)?;
    let _reloader = crate::reload::start(crate::reload::ConfigSource::of(common), pipeline.sets())?;
    if let Some(addr) = &config.output.prometheus {
        let addr = addr.parse().with_context(|| format!("[output] prometheus = {addr:?}"))?;
        let bound = crate::stats::serve_prometheus(addr, pipeline.board())?;
        eprintln!("weir: Prometheus metrics on http://{bound}/metrics");
    }
    // The proxy's exchanges beside the capture: same filestore, one eve.json, the same rules
    // (swapped in when they are reloaded).
    let icap = match config.icap.enabled {
        false => None,
        true => {
            let eve = pipeline.eve_writer(&config.output.eve_types).context("internal: no shared eve.json for ICAP")?;
            let service = IcapService::start(config, config.icap.listen, &out, eve, pipeline.sets())?;
            eprintln!("weir: ICAP listening on {}", service.local_addr());
            Some(service)
        }
    };
    eprintln!("weir: capturing on {interface} with {} worker(s); SIGINT or SIGTERM ends the run", config.capture.workers);

    let mut since_counters = 0u64;
    loop {
        match source.poll().map_err(|e| anyhow::anyhow!("{e}"))? {
            LivePoll::Packet(p) => {
                let (ts, link) = (p.ts, p.link);
                pipeline.process(ts, link, p.data)?;
                since_counters += 1;
                if since_counters >= KERNEL_COUNTERS_EVERY {
                    since_counters = 0;
                    publish_kernel_counters(&mut source, &pipeline);
                }
            }
            // Idle flows still time out when the link is quiet.
            LivePoll::Idle => {
                pipeline.advance(wall_clock())?;
                publish_kernel_counters(&mut source, &pipeline);
            }
            LivePoll::Stopped => break,
        }
        for warning in source.take_warnings() {
            eprintln!("weir: warning: {warning}");
        }
    }
    // ICAP stops first: it holds a writer into eve.json, which the pipeline's end waits for.
    if let Some(service) = icap {
        match service.stop() {
            Ok(summary) => eprintln!("weir: {summary}"),
            Err(e) => eprintln!("weir: warning: {e:#}"),
        }
    }
    publish_kernel_counters(&mut source, &pipeline);
    let kernel = source.kernel_stats().ok();
    let summary = pipeline.finish(
        Duration::from_secs(config.sandbox.replay_wait),
        Duration::from_secs(config.central.replay_wait),
    )?;
    let s = &summary.totals.stats;
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

/// Packets between two readings of the kernel's capture counters (a system call each).
const KERNEL_COUNTERS_EVERY: u64 = 65_536;

fn publish_kernel_counters(source: &mut LiveSource, pipeline: &Pipeline) {
    if let Ok(k) = source.kernel_stats() {
        pipeline.set_capture_counters(k.kernel_received, k.kernel_dropped, k.interface_dropped);
    }
}
