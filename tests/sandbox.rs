//! End-to-end: `weir replay` with sandbox dispatch on, against the in-process CAPE imitation of
//! weir-sandbox-client. Every eligible file of the project's HTTP capture reaches the sandbox
//! byte-identical exactly once, verdicts come back as EVE `sandbox` records, and a second replay
//! over the same spool submits nothing again.

mod common;

use std::path::Path;

use common::*;
use weir_sandbox_client::test_sandbox::TestSandbox;

#[test]
fn eligible_files_reach_the_sandbox_once_and_verdicts_come_back() {
    let sandbox = TestSandbox::start("secret-token").unwrap();
    let s = Scratch::new();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[sandbox]\nenabled = true\napi = \"cape\"\nurl = \"{}\"\ntoken = \"secret-token\"\nspool_dir = \"{}\"\n\
             min_file_size = 1\nfile_types = [\"pe\", \"elf\", \"pdf\", \"ole\", \"ooxml\", \"zip\", \"rar\", \"7z\", \"gzip\", \"rtf\", \"script\"]\n\
             rate_per_minute = 6000\nreplay_wait = 60\npoll_interval_ms = 50\n",
            sandbox.url(),
            s.path("spool").display()
        ),
    )
    .unwrap();
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/http.pcap");
    let out = s.path("out");
    let o = replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);

    let received = sandbox.files();
    assert!(!received.is_empty(), "no file reached the sandbox: {stderr}");
    for (sha, (bytes, times)) in &received {
        use sha2::{Digest, Sha256};
        assert_eq!(*times, 1, "{sha} submitted {times} times");
        assert_eq!(&weir_core::hex(&Sha256::digest(bytes)), sha, "submitted bytes differ from the file");
        let stored = out.join("filestore").join(&sha[..2]).join(sha);
        assert_eq!(&std::fs::read(stored).unwrap(), bytes, "the filestore holds the same bytes");
    }
    let events = eve(&out);
    let verdicts = of_type(&events, "sandbox");
    assert_eq!(verdicts.len(), received.len(), "one verdict record per submitted file: {stderr}");
    assert!(stderr.contains("0 still pending"), "{stderr}");

    // The same capture again, over the same spool: known verdicts are reused, nothing resubmitted.
    let tasks = sandbox.tasks_created();
    replay(&[&pcap], &s.path("out2"), &["--config", config.to_str().unwrap()]);
    assert_eq!(sandbox.tasks_created(), tasks);
    assert!(sandbox.files().values().all(|(_, times)| *times == 1));
}
