use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use weir_core::eve::Record;

/// Bytes a writer collects before it hands them to the merging thread: large enough that the
/// hand-off costs nothing per record, small enough that a quiet worker's records are not held long
/// (and [`EveWriter::flush`] hands over whatever is collected).
const MERGE_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting for the merging thread; a writer whose chunk does not fit waits (eve.json is
/// never thinned).
const MERGE_QUEUE_CHUNKS: usize = 256;

/// Writes EVE records, one JSON object per line, buffered. Appends to an existing eve.json (as
/// Suricata does) unless asked to overwrite. Several workers share one eve.json through
/// [`EveMerger`]: each writes whole lines into its own chunk and hands full chunks over, so lines
/// never interleave and one worker's records keep their order.
pub struct EveWriter {
    path: PathBuf,
    out: Out,
    /// Event types written; empty means all.
    enabled: HashSet<String>,
    counts: BTreeMap<String, u64>,
    line: Vec<u8>,
}

enum Out {
    File(BufWriter<File>),
    Merged { chunk: Vec<u8>, to_merger: SyncSender<Vec<u8>> },
}

fn open_eve(dir: &Path, overwrite: bool) -> io::Result<(PathBuf, File)> {
    let path = dir.join("eve.json");
    // Owner and group may read it (a log shipper in the sensor's group); others may not.
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(!overwrite)
        .truncate(overwrite)
        .mode(0o640)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok((path, file))
}

impl EveWriter {
    pub fn create(dir: &Path, overwrite: bool, enabled: &[String]) -> io::Result<EveWriter> {
        let (path, file) = open_eve(dir, overwrite)?;
        Ok(EveWriter::with_out(path, Out::File(BufWriter::with_capacity(1 << 16, file)), enabled))
    }

    fn with_out(path: PathBuf, out: Out, enabled: &[String]) -> EveWriter {
        EveWriter {
            path,
            out,
            enabled: enabled.iter().cloned().collect(),
            counts: BTreeMap::new(),
            line: Vec::with_capacity(1024),
        }
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
        match &mut self.out {
            Out::File(f) => f.write_all(&self.line),
            Out::Merged { chunk, .. } => {
                chunk.extend_from_slice(&self.line);
                if chunk.len() >= MERGE_CHUNK_BYTES { self.hand_over() } else { Ok(()) }
            }
        }
    }

    /// Records written so far, by event type.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Out::File(f) => f.flush(),
            Out::Merged { .. } => self.hand_over(),
        }
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let Out::Merged { chunk, to_merger } = &mut self.out else { return Ok(()) };
        if chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(chunk, Vec::with_capacity(MERGE_CHUNK_BYTES + 4096));
        to_merger
            .send(full)
            .map_err(|_| io::Error::other(format!("{}: the eve.json writer thread has stopped", self.path.display())))
    }
}

impl Drop for EveWriter {
    fn drop(&mut self) {
        // A merged writer's last chunk still goes to the file (a file writer's buffer flushes itself).
        let _ = self.hand_over();
    }
}

/// The one thread that owns eve.json when several workers write it.
pub struct EveMerger {
    path: PathBuf,
    to_merger: SyncSender<Vec<u8>>,
    thread: JoinHandle<io::Result<()>>,
}

impl EveMerger {
    pub fn start(dir: &Path, overwrite: bool) -> io::Result<EveMerger> {
        let (path, file) = open_eve(dir, overwrite)?;
        let (to_merger, rx) = sync_channel::<Vec<u8>>(MERGE_QUEUE_CHUNKS);
        let thread = std::thread::Builder::new()
            .name("weir-eve".into())
            .spawn(move || merge_chunks(rx, file))?;
        Ok(EveMerger { path, to_merger, thread })
    }

    /// A writer whose records end up in this eve.json.
    pub fn writer(&self, enabled: &[String]) -> EveWriter {
        let out = Out::Merged { chunk: Vec::with_capacity(MERGE_CHUNK_BYTES + 4096), to_merger: self.to_merger.clone() };
        EveWriter::with_out(self.path.clone(), out, enabled)
    }

    /// Waits until every writer was dropped and all they handed over is on disk.
    pub fn finish(self) -> io::Result<()> {
        let EveMerger { to_merger, thread, .. } = self;
        drop(to_merger);
        thread.join().unwrap_or_else(|_| Err(io::Error::other("the eve.json writer thread panicked")))
    }
}

fn merge_chunks(rx: Receiver<Vec<u8>>, file: File) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, file);
    while let Ok(chunk) = rx.recv() {
        out.write_all(&chunk)?;
        while let Ok(more) = rx.try_recv() {
            out.write_all(&more)?;
        }
        // The queue ran dry: put what came on disk, so a live run's records show up promptly.
        out.flush()?;
    }
    out.flush()
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

    #[test]
    fn merged_writers_keep_whole_lines_and_each_writer_s_order() {
        let dir = tempfile::tempdir().unwrap();
        let merger = EveMerger::start(dir.path(), true).unwrap();
        let mut threads = Vec::new();
        for w in 0..3u64 {
            let mut writer = merger.writer(&[]);
            threads.push(std::thread::spawn(move || {
                for i in 0..5000u64 {
                    let mut r = rec("flow");
                    r.insert("worker".into(), w.into());
                    r.insert("seq".into(), i.into());
                    writer.write(&r).unwrap();
                }
                writer.flush().unwrap();
                writer.counts().get("flow").copied()
            }));
        }
        for t in threads {
            assert_eq!(t.join().unwrap(), Some(5000));
        }
        merger.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
        let mut next = [0u64; 3];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let w = v["worker"].as_u64().unwrap() as usize;
            assert_eq!(v["seq"].as_u64().unwrap(), next[w]);
            next[w] += 1;
        }
        assert_eq!(next, [5000; 3]);
    }
}
