//! Test support: compares what a replay extracted with a `pcaps/*.manifest.json` list.

use serde_json::Value;
use weir_core::hex;

use crate::files::MemorySink;
use crate::mailstore::MemoryMailSink;

/// Every item of `protocol` in the manifest: messages (and header-only fetches) must be in the
/// mail store and attachments in the file sink, byte-identical (same SHA-256 and size).
/// Returns the number of items checked.
pub(crate) fn check(manifest: &str, protocol: &str, mails: &MemoryMailSink, files: &MemorySink) -> usize {
    let path = super::test_pcap::project_pcap(manifest);
    let manifest: Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    let mut checked = 0;
    for item in manifest["items"].as_array().expect("items") {
        if item["protocol"] != protocol {
            continue;
        }
        let sha = item["sha256"].as_str().expect("sha256");
        let size = item["size"].as_u64().expect("size") as usize;
        let bytes = match item["kind"].as_str() {
            Some("message" | "headers") => mails.stored.iter().find(|(h, _)| hex(h) == sha).map(|(_, b)| b),
            Some("attachment") => files.stored.iter().find(|(h, _)| hex(h) == sha).map(|(_, b)| b),
            _ => continue,
        };
        let bytes = bytes.unwrap_or_else(|| panic!("{protocol} {} ({}) not extracted", item["name"], item["kind"]));
        assert_eq!(bytes.len(), size, "{}", item["name"]);
        checked += 1;
    }
    checked
}
