//! End-to-end: every file and message in the project's own captures of real traffic (pcaps/,
//! each with a manifest of what was sent) comes out of `weir replay` byte-identical, found under
//! its SHA-256 in the filestore or the mail store.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps")
}

/// Replays one capture and returns the manifest entries of the given kinds that are missing from
/// the outputs, with the number checked.
fn missing(capture: &str, kinds: &[&str]) -> (Vec<String>, usize) {
    let s = Scratch::new();
    let out = s.path("out");
    replay(&[&pcaps().join(format!("{capture}.pcap"))], &out, &["--quiet"]);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pcaps().join(format!("{capture}.manifest.json"))).unwrap()).unwrap();
    let mut absent = Vec::new();
    let mut checked = 0;
    for item in manifest["items"].as_array().unwrap() {
        let kind = item["kind"].as_str().unwrap_or("");
        if !kinds.contains(&kind) {
            continue;
        }
        checked += 1;
        let sha = item["sha256"].as_str().unwrap();
        let path = if kind == "message" {
            out.join("mail").join(&sha[..2]).join(format!("{sha}.eml"))
        } else {
            out.join("filestore").join(&sha[..2]).join(sha)
        };
        match std::fs::read(&path) {
            Ok(bytes) if sha256_hex(&bytes) == sha => {}
            _ => absent.push(format!("{} {} ({})", item["protocol"], item["name"], item["how"])),
        }
    }
    (absent, checked)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    weir_core::hex(&Sha256::digest(bytes))
}

#[test]
fn http_downloads_and_uploads_come_out_unchanged() {
    let (absent, checked) = missing("http", &["file"]);
    assert!(checked >= 19, "{checked}");
    assert!(absent.is_empty(), "missing or different: {absent:#?}");
}

#[test]
fn smtp_messages_and_attachments_come_out_unchanged() {
    let (absent, checked) = missing("smtp", &["message", "attachment"]);
    assert_eq!(checked, 11);
    assert!(absent.is_empty(), "missing or different: {absent:#?}");
}

#[test]
fn pop3_and_imap_messages_and_attachments_come_out_unchanged() {
    let (absent, checked) = missing("pop3-imap", &["message", "attachment"]);
    assert_eq!(checked, 17);
    assert!(absent.is_empty(), "missing or different: {absent:#?}");
}

#[test]
fn ftp_transfers_in_every_data_mode_come_out_unchanged() {
    let (absent, checked) = missing("ftp", &["file"]);
    assert_eq!(checked, 9);
    assert!(absent.is_empty(), "missing or different: {absent:#?}");
}

#[test]
fn smb_reads_and_writes_come_out_unchanged() {
    let (absent, checked) = missing("smb", &["file"]);
    assert_eq!(checked, 8);
    assert!(absent.is_empty(), "missing or different: {absent:#?}");
}
