//! The mail store: every extracted email message, unchanged, as `OUT/mail/<aa>/<sha256>.eml`.
//!
//! Messages are held in memory anyway (MIME parsing needs the whole message, capped by
//! [`crate::mime::MimeConfig::max_message_bytes`]), so a sink takes a whole message in one call.
//! The disk store writes to `OUT/mail/tmp` first and renames into place, so a reader never sees
//! a partial message and each content is stored once. Files are 0600 and directories 0700: mail
//! is private data and may carry malware.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use weir_core::hex;

/// A mail storage failure. Never fatal: the message is logged as not stored.
#[derive(Debug, thiserror::Error)]
pub enum MailStoreError {
    #[error("mail store I/O failed at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Where extracted messages go. [`MailStore`] writes to disk; tests use [`MemoryMailSink`].
pub trait MailSink {
    /// Stores `message`, whose SHA-256 is `sha256`. Returns whether the content is now in the
    /// store (it may have been there already).
    fn store(&mut self, sha256: &[u8; 32], message: &[u8]) -> Result<bool, MailStoreError>;
}

/// Stores nothing (mail store disabled).
#[derive(Debug, Default)]
pub struct NullMailSink;

impl MailSink for NullMailSink {
    fn store(&mut self, _: &[u8; 32], _: &[u8]) -> Result<bool, MailStoreError> {
        Ok(false)
    }
}

/// Keeps messages in memory, once per content, up to `max_bytes` in total.
#[derive(Debug, Default)]
pub struct MemoryMailSink {
    pub max_bytes: usize,
    held: usize,
    /// Stored messages by SHA-256, in the order first seen.
    pub stored: Vec<([u8; 32], Vec<u8>)>,
}

impl MemoryMailSink {
    pub fn new(max_bytes: usize) -> Self {
        MemoryMailSink { max_bytes, ..Default::default() }
    }

    pub fn content(&self, sha256: &[u8; 32]) -> Option<&[u8]> {
        self.stored.iter().find(|(h, _)| h == sha256).map(|(_, m)| m.as_slice())
    }
}

impl MailSink for MemoryMailSink {
    fn store(&mut self, sha256: &[u8; 32], message: &[u8]) -> Result<bool, MailStoreError> {
        if self.stored.iter().any(|(h, _)| h == sha256) {
            return Ok(true);
        }
        if self.held + message.len() > self.max_bytes {
            return Ok(false);
        }
        self.held += message.len();
        self.stored.push((*sha256, message.to_vec()));
        Ok(true)
    }
}

/// Numbers temp files process-wide.
static TEMP_MAIL_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The on-disk mail store under an output directory.
#[derive(Debug)]
pub struct MailStore {
    dir: PathBuf,
    tmp_dir: PathBuf,
}

impl MailStore {
    /// Opens (creating if needed) `out/mail`.
    pub fn new(out: &Path) -> Result<Self, MailStoreError> {
        let dir = out.join("mail");
        let tmp_dir = dir.join("tmp");
        make_private_dir(&tmp_dir)?;
        Ok(MailStore { dir, tmp_dir })
    }

    /// Where the message with this SHA-256 is (or would be) stored.
    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex(sha256);
        self.dir.join(&name[..2]).join(format!("{name}.eml"))
    }
}

fn make_private_dir(path: &Path) -> Result<(), MailStoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| MailStoreError::Io { path: path.to_owned(), source })
}

impl MailSink for MailStore {
    fn store(&mut self, sha256: &[u8; 32], message: &[u8]) -> Result<bool, MailStoreError> {
        let dest = self.path_of(sha256);
        if dest.exists() {
            return Ok(true);
        }
        // Unique across worker threads (each has its own store: a per-store counter would let
        // two workers write one temp file) and, by the process id, across sensors sharing one
        // output directory.
        let unique = TEMP_MAIL_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.tmp_dir.join(format!("{}-m{unique}", std::process::id()));
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| MailStoreError::Io { path, source }
        };
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(message));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        if let Some(parent) = dest.parent() {
            make_private_dir(parent)?;
        }
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(b: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&Sha256::digest(b));
        out
    }

    #[test]
    fn disk_store_is_atomic_once_per_content_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let out = tempfile::tempdir().expect("tempdir");
        let mut store = MailStore::new(out.path()).expect("store");
        let msg = b"Subject: hi\r\n\r\nbody\r\n";
        let h = sha(msg);
        assert!(store.store(&h, msg).expect("first"));
        assert!(store.store(&h, msg).expect("second"));
        let name = hex(&h);
        let path = out.path().join("mail").join(&name[..2]).join(format!("{name}.eml"));
        assert_eq!(store.path_of(&h), path);
        assert_eq!(fs::read(&path).expect("read"), msg);
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(path.parent().expect("parent")).expect("meta").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(fs::read_dir(out.path().join("mail/tmp")).expect("tmp").count(), 0);
    }

    #[test]
    fn memory_sink_dedups_and_respects_its_budget() {
        let mut sink = MemoryMailSink::new(10);
        assert!(sink.store(&sha(b"12345"), b"12345").expect("a"));
        assert!(sink.store(&sha(b"12345"), b"12345").expect("dup"));
        assert!(!sink.store(&sha(b"123456"), b"123456").expect("over"));
        assert_eq!(sink.stored.len(), 1);
    }
}
