//! End-to-end: every pcap of the suricata-verify corpus (in ../shared, beside the repository)
//! and of pcaps/ replays with exit 0 and well-formed EVE output.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(captures_in(&path));
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/suricata-verify");
    dir.is_dir().then_some(dir)
}

#[test]
fn every_corpus_pcap_replays_cleanly() {
    let Some(dir) = corpus_dir() else {
        eprintln!("../shared/corpus/suricata-verify not found; skipped");
        return;
    };
    let pcaps = captures_in(&dir);
    assert!(pcaps.len() >= 81, "found only {} corpus pcaps", pcaps.len());
    let s = Scratch::new();
    for (i, pcap) in pcaps.iter().enumerate() {
        let out = s.path(&format!("out{i}"));
        let o = replay_status(&[pcap], &out, &["--quiet"]);
        assert!(o.status.success(), "{}: {}", pcap.display(), String::from_utf8_lossy(&o.stderr));
        let events = eve(&out);
        for e in &events {
            assert!(e["timestamp"].as_str().is_some_and(|t| t.ends_with("+0000")), "{}: {e}", pcap.display());
            assert!(e["event_type"].is_string());
        }
        // Every record of a flow carries a flow_id that its flow record also has.
        let flow_ids: std::collections::HashSet<u64> =
            of_type(&events, "flow").iter().filter_map(|f| f["flow_id"].as_u64()).collect();
        for e in events.iter().filter(|e| e["event_type"] != "flow" && e.get("flow_id").is_some()) {
            let id = e["flow_id"].as_u64().unwrap();
            assert!(flow_ids.contains(&id), "{}: record without its flow: {e}", pcap.display());
        }
    }
}

#[test]
fn the_bundled_captures_replay_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let s = Scratch::new();
    let out = s.path("out");
    replay(&[&dir], &out, &["--quiet"]);
    let events = eve(&out);
    assert!(of_type(&events, "flow").len() > 50);
}
