use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use weir_core::eve::Record;

/// Writes EVE records, one JSON object per line, buffered. Appends to an existing eve.json (as
/// Suricata does) unless asked to overwrite.
pub struct EveWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Event types written; empty means all.
    enabled: HashSet<String>,
    counts: BTreeMap<String, u64>,
    line: Vec<u8>,
}

impl EveWriter {
    pub fn create(dir: &Path, overwrite: bool, enabled: &[String]) -> io::Result<EveWriter> {
        let path = dir.join("eve.json");
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!overwrite)
            .truncate(overwrite)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(EveWriter {
            path,
            out: BufWriter::with_capacity(1 << 16, file),
            enabled: enabled.iter().cloned().collect(),
            counts: BTreeMap::new(),
            line: Vec::with_capacity(1024),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record unless its event type is switched off.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let event_type = record.get("event_type").and_then(|v| v.as_str()).unwrap_or("");
        if !self.enabled.is_empty() && !self.enabled.contains(event_type) {
            return Ok(());
        }
        match self.counts.get_mut(event_type) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(event_type.to_string(), 1);
            }
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Records written so far, by event type.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::Timestamp;

    fn rec(event_type: &str) -> Record {
        weir_core::eve::record(Timestamp::ZERO, event_type, None)
    }

    #[test]
    fn appends_unless_overwriting_and_filters_types() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EveWriter::create(dir.path(), false, &[]).unwrap();
        w.write(&rec("flow")).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut w = EveWriter::create(dir.path(), false, &["alert".to_string()]).unwrap();
        w.write(&rec("flow")).unwrap();
        w.write(&rec("alert")).unwrap();
        assert_eq!(w.counts().get("alert"), Some(&1));
        assert_eq!(w.counts().get("flow"), None);
        w.flush().unwrap();
        let text = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
        let types: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["flow", "alert"]);
        drop(w);
        let mut w = EveWriter::create(dir.path(), true, &[]).unwrap();
        w.write(&rec("stats")).unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("eve.json")).unwrap().lines().count(), 1);
    }
}
