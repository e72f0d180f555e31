//! The file pipeline every protocol reuses: parsers stream a file's bytes through an [`OpenFile`],
//! which hashes them incrementally (MD5, SHA-1, SHA-256) and hands them to a [`FileSink`] for
//! storage. Nothing here holds a whole file in memory, and a name seen on the wire is never used
//! as a path on disk: stored files are named by their SHA-256.
//!
//! A file that spanned a gap or was cut by a limit ends [`FileState::Truncated`] with `gaps`
//! set; missing bytes are never padded.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use md5::Md5;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use weir_core::{hex, FileArtifact, FileState};

/// Longest file name (in bytes, from the wire) kept in records; longer names are cut on a char
/// boundary. Names only ever appear in EVE, never on disk, but an attacker controls their length.
pub const MAX_FILE_NAME_BYTES: usize = 1024;

/// Numbers temp files process-wide.
static TEMP_FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many leading bytes of a file are kept to recognise its type.
const MAGIC_PREFIX_BYTES: usize = 64;

/// A file storage failure. Never fatal: the file is logged with `stored: false`.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("filestore I/O failed at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("unknown file store handle {0}")]
    UnknownHandle(u64),
}

/// A file being written to a sink, as the sink numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreHandle(pub u64);

/// Where file bytes go. The disk implementation is [`Filestore`]; tests use [`MemorySink`].
pub trait FileSink {
    /// Starts storing a new file.
    fn open(&mut self) -> Result<StoreHandle, FileError>;
    /// Appends the next bytes of the file.
    fn write(&mut self, handle: StoreHandle, data: &[u8]) -> Result<(), FileError>;
    /// Records that bytes are missing here. Storage never pads, so most sinks ignore it.
    fn gap(&mut self, _handle: StoreHandle, _len: u64) {}
    /// Finishes the file whose content hashes to `sha256`. Returns whether the content is now in
    /// the store (it may have been there already).
    fn close(&mut self, handle: StoreHandle, sha256: &[u8; 32]) -> Result<bool, FileError>;
    /// Forgets a file that will not be logged (an abandoned assembly).
    fn discard(&mut self, _handle: StoreHandle) {}
}

/// A sink that stores nothing (filestore disabled): every file is logged with `stored: false`.
#[derive(Debug, Default)]
pub struct NullSink;

impl FileSink for NullSink {
    fn open(&mut self) -> Result<StoreHandle, FileError> {
        Ok(StoreHandle(0))
    }
    fn write(&mut self, _: StoreHandle, _: &[u8]) -> Result<(), FileError> {
        Ok(())
    }
    fn close(&mut self, _: StoreHandle, _: &[u8; 32]) -> Result<bool, FileError> {
        Ok(false)
    }
}

/// Keeps files in memory, keyed by SHA-256 once closed. For tests and for callers that want the
/// bytes (ICAP replies); `max_bytes` bounds what it holds in total, beyond which files are not
/// stored.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub max_bytes: usize,
    held: usize,
    next: u64,
    open: HashMap<u64, Vec<u8>>,
    /// Closed files by SHA-256, in the order they were closed (duplicates kept once).
    pub stored: Vec<([u8; 32], Vec<u8>)>,
}

impl MemorySink {
    pub fn new(max_bytes: usize) -> Self {
        MemorySink { max_bytes, ..Default::default() }
    }

    /// The stored bytes of the file with this SHA-256.
    pub fn content(&self, sha256: &[u8; 32]) -> Option<&[u8]> {
        self.stored.iter().find(|(h, _)| h == sha256).map(|(_, b)| b.as_slice())
    }
}

impl FileSink for MemorySink {
    fn open(&mut self) -> Result<StoreHandle, FileError> {
        self.next += 1;
        self.open.insert(self.next, Vec::new());
        Ok(StoreHandle(self.next))
    }
    fn write(&mut self, handle: StoreHandle, data: &[u8]) -> Result<(), FileError> {
        let buf = self.open.get_mut(&handle.0).ok_or(FileError::UnknownHandle(handle.0))?;
        if self.held + data.len() <= self.max_bytes {
            self.held += data.len();
            buf.extend_from_slice(data);
        } else {
            // Over budget: forget the file, close() reports it as not stored.
            self.held -= buf.len();
            self.open.remove(&handle.0);
        }
        Ok(())
    }
    fn discard(&mut self, handle: StoreHandle) {
        if let Some(buf) = self.open.remove(&handle.0) {
            self.held -= buf.len();
        }
    }
    fn close(&mut self, handle: StoreHandle, sha256: &[u8; 32]) -> Result<bool, FileError> {
        let Some(buf) = self.open.remove(&handle.0) else { return Ok(false) };
        if self.stored.iter().all(|(h, _)| h != sha256) {
            self.stored.push((*sha256, buf));
        } else {
            self.held -= buf.len();
        }
        Ok(true)
    }
}

/// The on-disk filestore: `ROOT/filestore/<aa>/<sha256>`, written to `ROOT/filestore/tmp` first
/// and renamed into place, so a reader never sees a partial file and each content is stored once.
/// Files are created owner-read/write only (0600) and directories 0700: they may be malware or
/// private data.
#[derive(Debug)]
pub struct Filestore {
    dir: PathBuf,
    tmp_dir: PathBuf,
    next: u64,
    open: HashMap<u64, (PathBuf, BufWriter<File>)>,
}

impl Filestore {
    /// Opens (creating if needed) the filestore under the output directory `out`.
    pub fn new(out: &Path) -> Result<Self, FileError> {
        let dir = out.join("filestore");
        let tmp_dir = dir.join("tmp");
        make_private_dir(&tmp_dir)?;
        Ok(Filestore { dir, tmp_dir, next: 0, open: HashMap::new() })
    }

    /// Where the file with this SHA-256 is (or would be) stored.
    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex(sha256);
        self.dir.join(&name[..2]).join(name)
    }
}

fn make_private_dir(path: &Path) -> Result<(), FileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| FileError::Io { path: path.to_owned(), source })
}

impl FileSink for Filestore {
    fn open(&mut self) -> Result<StoreHandle, FileError> {
        self.next += 1;
        // Unique across worker threads (each has its own Filestore) and across sensors sharing
        // one output directory (the process id).
        let unique = TEMP_FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp_dir.join(format!("{}-{unique}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| FileError::Io { path: path.clone(), source })?;
        self.open.insert(self.next, (path, BufWriter::with_capacity(64 * 1024, file)));
        Ok(StoreHandle(self.next))
    }

    fn write(&mut self, handle: StoreHandle, data: &[u8]) -> Result<(), FileError> {
        let (path, w) = self.open.get_mut(&handle.0).ok_or(FileError::UnknownHandle(handle.0))?;
        w.write_all(data).map_err(|source| FileError::Io { path: path.clone(), source })
    }

    fn close(&mut self, handle: StoreHandle, sha256: &[u8; 32]) -> Result<bool, FileError> {
        let (tmp, w) = self.open.remove(&handle.0).ok_or(FileError::UnknownHandle(handle.0))?;
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| FileError::Io { path, source }
        };
        let file = w.into_inner().map_err(|e| FileError::Io { path: tmp.clone(), source: e.into_error() })?;
        drop(file);
        let dest = self.path_of(sha256);
        if dest.exists() {
            fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            return Ok(true);
        }
        if let Some(parent) = dest.parent() {
            make_private_dir(parent)?;
        }
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(true)
    }

    fn discard(&mut self, handle: StoreHandle) {
        self.discard_temp(handle);
    }
}

impl Filestore {
    fn discard_temp(&mut self, handle: StoreHandle) {
        if let Some((path, w)) = self.open.remove(&handle.0) {
            drop(w);
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for Filestore {
    fn drop(&mut self) {
        // Files never closed (process shutting down mid-flow) must not linger as temp files.
        for (_, (path, _)) in self.open.drain() {
            let _ = fs::remove_file(path);
        }
    }
}

/// A file being extracted: hashes every byte as it passes and streams it to the sink.
#[derive(Debug)]
pub struct OpenFile {
    name: String,
    tx_id: Option<u64>,
    file_id: u64,
    handle: Option<StoreHandle>,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    size: u64,
    gap_bytes: u64,
    gaps: bool,
    prefix: Vec<u8>,
    store_failed: bool,
}

/// A finished file: the artifact plus what its `fileinfo` record needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedFile {
    /// `artifact.size` is the number of bytes actually extracted (and stored).
    pub artifact: FileArtifact,
    /// Bytes known to be missing. EVE `size` counts them, as Suricata does, so a truncated
    /// file's `size` is its length on the wire, not what was stored.
    pub gap_bytes: u64,
    pub stored: bool,
    pub tx_id: Option<u64>,
    /// Per-flow file number, from 1.
    pub file_id: u64,
    /// For a part of a larger file (an HTTP 206 response), the first and last byte offsets it
    /// covers (EVE `start`, `end`).
    pub range: Option<(u64, u64)>,
}

impl OpenFile {
    /// Starts a file named `name` (bytes from the wire, decoded lossily and length-capped).
    pub fn open(sink: &mut dyn FileSink, name: &[u8], tx_id: Option<u64>, file_id: u64) -> OpenFile {
        let (handle, store_failed) = match sink.open() {
            Ok(h) => (Some(h), false),
            Err(_) => (None, true),
        };
        OpenFile {
            name: wire_name(name),
            tx_id,
            file_id,
            handle,
            md5: Md5::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            size: 0,
            gap_bytes: 0,
            gaps: false,
            prefix: Vec::new(),
            store_failed,
        }
    }

    pub fn write(&mut self, sink: &mut dyn FileSink, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
        self.size += data.len() as u64;
        if self.prefix.len() < MAGIC_PREFIX_BYTES && !self.gaps {
            let take = (MAGIC_PREFIX_BYTES - self.prefix.len()).min(data.len());
            self.prefix.extend_from_slice(&data[..take]);
        }
        if let Some(h) = self.handle
            && sink.write(h, data).is_err()
        {
            self.store_failed = true;
        }
    }

    /// Notes `len` missing bytes: the file will end truncated with `gaps: true`, and nothing is
    /// padded.
    pub fn gap(&mut self, sink: &mut dyn FileSink, len: u64) {
        self.gaps = true;
        self.gap_bytes = self.gap_bytes.saturating_add(len);
        if let Some(h) = self.handle {
            sink.gap(h, len);
        }
    }

    /// Marks the file as cut short (a limit, or the connection closed mid-body).
    pub fn mark_truncated(&mut self) {
        self.gaps = true;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn has_gaps(&self) -> bool {
        self.gaps
    }

    /// Drops the file without logging or storing it.
    pub fn discard(self, sink: &mut dyn FileSink) {
        if let Some(h) = self.handle {
            sink.discard(h);
        }
    }

    /// Finishes the file. `complete` says whether the protocol saw its whole length; a file with
    /// gaps or not complete ends TRUNCATED.
    pub fn close(self, sink: &mut dyn FileSink, complete: bool) -> ClosedFile {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&self.sha256.finalize());
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(&self.sha1.finalize());
        let mut md5 = [0u8; 16];
        md5.copy_from_slice(&self.md5.finalize());
        let gaps = self.gaps || !complete;
        let stored = match self.handle {
            Some(h) if !self.store_failed => sink.close(h, &sha256).unwrap_or(false),
            Some(h) => {
                let _ = sink.close(h, &sha256);
                false
            }
            None => false,
        };
        ClosedFile {
            artifact: FileArtifact {
                sha256,
                sha1,
                md5,
                size: self.size,
                name: self.name,
                magic: magic(&self.prefix).map(str::to_owned),
                state: if gaps { FileState::Truncated } else { FileState::Closed },
                gaps,
            },
            stored,
            gap_bytes: self.gap_bytes,
            tx_id: self.tx_id,
            file_id: self.file_id,
            range: None,
        }
    }
}

impl ClosedFile {
    /// The EVE `fileinfo` object, as Suricata 8 writes it.
    pub fn fileinfo(&self) -> Value {
        let a = &self.artifact;
        let mut m = Map::new();
        m.insert("filename".into(), a.name.clone().into());
        if let Some(magic) = &a.magic {
            m.insert("magic".into(), magic.clone().into());
        }
        m.insert("gaps".into(), a.gaps.into());
        m.insert("state".into(), a.state.eve().into());
        m.insert("md5".into(), hex(&a.md5).into());
        m.insert("sha1".into(), hex(&a.sha1).into());
        m.insert("sha256".into(), hex(&a.sha256).into());
        m.insert("stored".into(), self.stored.into());
        m.insert("file_id".into(), self.file_id.into());
        m.insert("size".into(), a.size.saturating_add(self.gap_bytes).into());
        if let Some(tx) = self.tx_id {
            m.insert("tx_id".into(), tx.into());
        }
        if let Some((start, end)) = self.range {
            m.insert("start".into(), start.into());
            m.insert("end".into(), end.into());
        }
        Value::Object(m)
    }
}

/// A name from the wire as text: invalid UTF-8 replaced, cut to [`MAX_FILE_NAME_BYTES`].
fn wire_name(name: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&name[..name.len().min(MAX_FILE_NAME_BYTES)]).into_owned();
    while s.len() > MAX_FILE_NAME_BYTES {
        s.pop();
    }
    s
}

/// A short libmagic-style description for a few common types, from the first bytes. Cheap on
/// purpose: full libmagic is not worth its cost on a sensor's hot path.
pub fn magic(prefix: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&[u8], &str)] = &[
        (b"MZ", "PE32 executable (MS-DOS)"),
        (b"\x7fELF", "ELF executable"),
        (b"%PDF-", "PDF document"),
        (b"PK\x03\x04", "Zip archive data"),
        (b"\x1f\x8b", "gzip compressed data"),
        (b"\x89PNG\r\n\x1a\n", "PNG image data"),
        (b"GIF87a", "GIF image data, version 87a"),
        (b"GIF89a", "GIF image data, version 89a"),
        (b"\xff\xd8\xff", "JPEG image data"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Composite Document File V2 Document"),
        (b"Rar!\x1a\x07", "RAR archive data"),
        (b"7z\xbc\xaf\x27\x1c", "7-zip archive data"),
        (b"{\\rtf", "Rich Text Format data"),
        (b"\xca\xfe\xba\xbe", "Mach-O universal binary"),
    ];
    if let Some((_, name)) = TABLE.iter().find(|(sig, _)| prefix.starts_with(sig)) {
        return Some(name);
    }
    let start = prefix.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(prefix.len());
    let head = &prefix[start..];
    let starts_ci = |p: &[u8]| head.len() >= p.len() && head[..p.len()].eq_ignore_ascii_case(p);
    if starts_ci(b"<!doctype html") || starts_ci(b"<html") {
        Some("HTML document, ASCII text")
    } else if starts_ci(b"<?xml") {
        Some("XML document text")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 and MD5 of "hello world\n" (as `sha256sum`/`md5sum` print them).
    const HELLO_SHA256: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";
    const HELLO_MD5: &str = "6f5902ac237024bdd0c176cb93063dc4";

    #[test]
    fn hashes_are_incremental_and_match_the_whole() {
        let mut sink = MemorySink::new(1 << 20);
        let mut f = OpenFile::open(&mut sink, b"/hello.txt", Some(0), 1);
        f.write(&mut sink, b"hello ");
        f.write(&mut sink, b"world\n");
        let c = f.close(&mut sink, true);
        assert_eq!(hex(&c.artifact.sha256), HELLO_SHA256);
        assert_eq!(hex(&c.artifact.md5), HELLO_MD5);
        assert_eq!(hex(&c.artifact.sha1), "22596363b3de40b06f981fb85d82312e8c0ed511");
        assert_eq!(c.artifact.size, 12);
        assert_eq!(c.artifact.state, FileState::Closed);
        assert!(c.stored);
        assert_eq!(sink.content(&c.artifact.sha256), Some(&b"hello world\n"[..]));
    }

    #[test]
    fn a_gap_truncates_and_is_not_padded() {
        let mut sink = MemorySink::new(1 << 20);
        let mut f = OpenFile::open(&mut sink, b"x", None, 1);
        f.write(&mut sink, b"abc");
        f.gap(&mut sink, 100);
        f.write(&mut sink, b"def");
        let c = f.close(&mut sink, true);
        assert_eq!(c.artifact.size, 6);
        assert_eq!(c.artifact.state, FileState::Truncated);
        assert!(c.artifact.gaps);
        assert_eq!(sink.content(&c.artifact.sha256), Some(&b"abcdef"[..]));
        let info = c.fileinfo();
        assert_eq!(info["state"], "TRUNCATED");
        assert_eq!(info["gaps"], true);
        // Suricata counts the missing bytes in `size`; the stored file has only what was seen.
        assert_eq!(info["size"], 106);
    }

    #[test]
    fn incomplete_files_are_truncated() {
        let mut sink = NullSink;
        let mut f = OpenFile::open(&mut sink, b"x", None, 1);
        f.write(&mut sink, b"abc");
        let c = f.close(&mut sink, false);
        assert_eq!(c.artifact.state, FileState::Truncated);
        assert!(!c.stored);
    }

    #[test]
    fn long_names_are_capped() {
        let mut sink = NullSink;
        let name = vec![b'a'; MAX_FILE_NAME_BYTES * 3];
        let f = OpenFile::open(&mut sink, &name, None, 1);
        assert_eq!(f.close(&mut sink, true).artifact.name.len(), MAX_FILE_NAME_BYTES);
    }

    #[test]
    fn filestore_writes_atomically_once_per_content_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let out = tempfile::tempdir().expect("tempdir");
        let mut store = Filestore::new(out.path()).expect("filestore");
        let mut first = None;
        for _ in 0..2 {
            let mut f = OpenFile::open(&mut store, b"../../etc/passwd", Some(0), 1);
            f.write(&mut store, b"hello world\n");
            let c = f.close(&mut store, true);
            assert!(c.stored);
            first = Some(c.artifact.sha256);
        }
        let sha = first.expect("one file");
        let path = out.path().join("filestore/a9").join(HELLO_SHA256);
        assert_eq!(store.path_of(&sha), path);
        assert_eq!(fs::read(&path).expect("stored"), b"hello world\n");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let tmp_left = fs::read_dir(out.path().join("filestore/tmp")).expect("tmp").count();
        assert_eq!(tmp_left, 0);
        // The wire name was never a path.
        assert!(!out.path().join("etc").exists());
    }

    #[test]
    fn two_filestores_in_one_process_do_not_share_temp_files() {
        let out = tempfile::tempdir().expect("tempdir");
        let mut a = Filestore::new(out.path()).expect("a");
        let mut b = Filestore::new(out.path()).expect("b");
        let mut fa = OpenFile::open(&mut a, b"a", None, 1);
        let mut fb = OpenFile::open(&mut b, b"b", None, 1);
        fa.write(&mut a, b"first");
        fb.write(&mut b, b"second");
        let ca = fa.close(&mut a, true);
        let cb = fb.close(&mut b, true);
        assert_eq!(fs::read(a.path_of(&ca.artifact.sha256)).expect("a"), b"first");
        assert_eq!(fs::read(b.path_of(&cb.artifact.sha256)).expect("b"), b"second");
    }

    #[test]
    fn magic_recognises_common_types() {
        assert_eq!(magic(b"MZ\x90\x00"), Some("PE32 executable (MS-DOS)"));
        assert_eq!(magic(b"  <!DOCTYPE HTML>"), Some("HTML document, ASCII text"));
        assert_eq!(magic(b"X5O!P%@AP"), None);
    }
}
