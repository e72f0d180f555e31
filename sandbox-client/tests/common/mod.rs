//! Shared helpers: a scratch rig (filestore, spool, fast configuration), generated files,
//! sightings, and the delivery checks every test makes.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_core::{
    AppProto, Artifact, ArtifactContext, FileArtifact, FileState, FlowKey, IpProto, SeenIn,
    Sighting, Timestamp, UrlArtifact, Vlans,
};
use weir_sandbox_client::test_sandbox::TestSandbox;
use weir_sandbox_client::{ApiKind, Dispatcher, NoExclusions, SandboxConfig};
use weir_spool::Filestore;

/// The token the test sandboxes accept.
pub const TOKEN: &str = "s3cret";
/// Bound on waiting for a run to drain; tests assert counts, not times.
pub const DRAIN: Duration = Duration::from_secs(60);

/// A scratch directory holding a filestore and a spool, and the sandbox URL dispatchers built
/// from it point at. Dispatchers started twice from one rig share the spool, as a restart does.
pub struct Rig {
    pub url: String,
    pub root: PathBuf,
    pub store: Filestore,
    _temp: Option<tempfile::TempDir>,
}

impl Rig {
    /// A fresh scratch directory for a sandbox at `url`.
    pub fn new(url: &str) -> Rig {
        let temp = tempfile::tempdir().unwrap();
        let mut rig = Rig::at(url, temp.path());
        rig._temp = Some(temp);
        rig
    }

    /// A rig over an existing directory (a child process reopening its parent's scratch).
    pub fn at(url: &str, root: &Path) -> Rig {
        Rig {
            url: url.to_string(),
            root: root.to_path_buf(),
            store: Filestore::new(root.join("filestore")),
            _temp: None,
        }
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// The fast test configuration for `api`, with the right token.
    pub fn config(&self, api: ApiKind) -> SandboxConfig {
        config(&self.url, &self.spool_dir(), api, TOKEN)
    }

    pub fn start(&self, api: ApiKind) -> Dispatcher {
        self.start_with(self.config(api))
    }

    pub fn start_with(&self, config: SandboxConfig) -> Dispatcher {
        start(config, &self.store)
    }

    /// Offers `pe_bytes(n)` for every `n`, each from flow `n`.
    pub fn offer_files(&self, d: &Dispatcher, ns: Range<u32>) {
        for n in ns {
            d.offer(file_sighting(
                &self.store,
                &pe_bytes(n),
                "x.exe",
                u64::from(n),
            ));
        }
    }
}

/// An address nothing listens on (yet): a sandbox that is down.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Every file `pe_bytes(n)` for `n` in `ns`, and nothing else, reached the sandbox byte-identical
/// exactly once.
pub fn assert_files_delivered_once(sandbox: &TestSandbox, ns: Range<u32>) {
    let files = sandbox.files();
    assert_eq!(files.len(), ns.len(), "distinct files received");
    for n in ns {
        let bytes = pe_bytes(n);
        let Some((got, times)) = files.get(&sha_hex(&bytes)) else {
            panic!("file {n} never reached the sandbox");
        };
        assert_eq!(*times, 1, "file {n} submitted {times} times");
        assert_eq!(got, &bytes, "file {n} not byte-identical");
    }
}

pub fn config(url: &str, spool_dir: &Path, api: ApiKind, token: &str) -> SandboxConfig {
    SandboxConfig {
        enabled: true,
        api,
        url: url.into(),
        token: token.into(),
        spool_dir: spool_dir.to_path_buf(),
        min_size: 1,
        urls_from: vec!["email".into(), "http".into()],
        concurrency: 4,
        submissions_per_minute: 600_000,
        timeout_secs: 5,
        poll_interval_ms: 5,
        backoff_base_ms: 5,
        backoff_max_secs: 1,
        circuit_failures: 5,
        circuit_cooldown_ms: 50,
        queue_capacity: 8,
        ..SandboxConfig::default()
    }
}

pub fn start(config: SandboxConfig, store: &Filestore) -> Dispatcher {
    Dispatcher::start(config, Arc::new(store.clone()), Arc::new(NoExclusions)).unwrap()
}

/// A PE-looking file, distinct per `n`; every fifth one is "malicious" to the test sandbox.
pub fn pe_bytes(n: u32) -> Vec<u8> {
    let mut b = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    b.extend_from_slice(format!("sample {n} ").as_bytes());
    if n.is_multiple_of(5) {
        b.extend_from_slice(b"EVIL");
    }
    // Varied sizes, some over a typical socket buffer.
    b.extend((0..(n as usize * 997) % 70_000).map(|i| (i as u32 ^ n) as u8));
    b
}

pub fn ctx(flow_id: u64) -> ArtifactContext {
    ArtifactContext {
        ts: Timestamp::from_secs_nanos(1_706_702_400 + flow_id, 0),
        flow_id,
        key: FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            src_port: 40_000 + (flow_id % 20_000) as u16,
            dst_port: 80,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        },
        app_proto: Some(AppProto::Http),
        tx_id: Some(0),
    }
}

/// Stores `bytes` and describes them as an HTTP download named `name`.
pub fn file_sighting(store: &Filestore, bytes: &[u8], name: &str, flow_id: u64) -> Sighting {
    let r = store.store(bytes).unwrap();
    Sighting {
        ctx: ctx(flow_id),
        artifact: Artifact::File(FileArtifact {
            sha256: r.sha256,
            sha1: [0; 20],
            md5: [0; 16],
            size: r.len,
            name: name.into(),
            magic: None,
            state: FileState::Closed,
            gaps: false,
        }),
    }
}

pub fn url_sighting(url: &str, seen_in: SeenIn, flow_id: u64) -> Sighting {
    Sighting {
        ctx: ctx(flow_id),
        artifact: Artifact::Url(UrlArtifact {
            url: url.into(),
            seen_in,
        }),
    }
}

/// Polls `cond` every 5 ms for at most `limit`; returns whether it held. Never an assertion about
/// time: callers assert on counts.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

pub fn sandbox_records(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["event_type"] == "sandbox")
        .collect()
}

pub fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
