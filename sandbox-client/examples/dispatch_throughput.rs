//! Dispatch throughput against the in-process test sandbox, for a capture-like mix of artifacts:
//! `cargo run -p weir-sandbox-client --example dispatch_throughput -- [FILES] [CONCURRENCY]`.
//!
//! Prints what was submitted, deduplicated and skipped, and artifacts judged per second with
//! pacing off (a real deployment is paced by `submissions_per_minute` and the sandbox itself).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_core::{
    AppProto, Artifact, ArtifactContext, FileArtifact, FileState, FlowKey, IpProto, Sighting,
    Timestamp, Vlans,
};
use weir_sandbox_client::test_sandbox::TestSandbox;
use weir_sandbox_client::{Dispatcher, NoExclusions, SandboxConfig};
use weir_spool::Filestore;

fn main() {
    let mut args = std::env::args().skip(1);
    let files: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let sandbox = TestSandbox::start("t").expect("test sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Filestore::new(dir.path().join("filestore"));
    let config = SandboxConfig {
        enabled: true,
        url: sandbox.url(),
        token: "t".into(),
        spool_dir: dir.path().join("spool"),
        concurrency,
        submissions_per_minute: 6_000_000,
        poll_interval_ms: 5,
        ..SandboxConfig::default()
    };
    let d = Dispatcher::start(config, Arc::new(store.clone()), Arc::new(NoExclusions))
        .expect("dispatcher");
    // A third of the files are web pages and images the policy skips; a fifth of the executables
    // are seen twice.
    let mut sightings = Vec::new();
    for n in 0..files {
        let mut bytes = match n % 3 {
            0 => b"<html><body>".to_vec(),
            1 => b"MZ\x90\x00\x03\x00".to_vec(),
            _ => b"%PDF-1.7\n".to_vec(),
        };
        bytes.extend(
            (0..2_000 + (n as usize * 7919) % 200_000)
                .map(|i| (i as u32).wrapping_mul(n + 1) as u8),
        );
        let r = store.store(&bytes).expect("filestore");
        let s = sighting(r.sha256, r.len, u64::from(n));
        if n % 5 == 1 {
            sightings.push(sighting(r.sha256, r.len, u64::from(n) + 1_000_000));
        }
        sightings.push(s);
    }
    let started = Instant::now();
    let offered = sightings.len();
    for s in sightings {
        d.offer(s);
    }
    let offer_secs = started.elapsed().as_secs_f64();
    let report = d.finish(Duration::from_secs(600));
    let secs = started.elapsed().as_secs_f64();
    let s = &report.stats;
    println!("artifacts offered:   {offered}");
    println!("submitted:           {}", s.submitted);
    println!("duplicates:          {}", s.duplicate);
    println!("skipped by policy:   {}", s.skipped_policy);
    println!(
        "verdicts:            {} ({} malicious)",
        s.verdicts, s.malicious
    );
    println!("spilled to spool:    {}", s.spilled);
    println!("still pending:       {}", report.pending.len());
    println!(
        "offer calls:         {offer_secs:.3} s for {offered} ({:.0} µs each)",
        offer_secs * 1e6 / offered as f64
    );
    println!(
        "until all judged:    {secs:.2} s, {:.0} verdicts/s",
        s.verdicts as f64 / secs
    );
    println!(
        "sandbox files:       {} (each once: {})",
        sandbox.files().len(),
        sandbox.files().values().all(|f| f.1 == 1)
    );
}

fn sighting(sha256: [u8; 32], size: u64, flow_id: u64) -> Sighting {
    Sighting {
        ctx: ArtifactContext {
            ts: Timestamp::from_secs_nanos(1_706_702_400, 0),
            flow_id,
            key: FlowKey {
                src_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                dst_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                src_port: 40_000,
                dst_port: 80,
                proto: IpProto::TCP,
                vlans: Vlans::default(),
                tunnel_depth: 0,
            },
            app_proto: Some(AppProto::Http),
            tx_id: Some(0),
        },
        artifact: Artifact::File(FileArtifact {
            sha256,
            sha1: [0; 20],
            md5: [0; 16],
            size,
            name: "download.bin".into(),
            magic: None,
            state: FileState::Closed,
            gaps: false,
        }),
    }
}
