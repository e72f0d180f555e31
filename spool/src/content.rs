//! The content-addressed store spool items refer to: Weir's filestore layout
//! `<root>/<aa>/<sha256>` (SPEC section 3), read back with its length and hash checked so a
//! delivery is byte-identical or refused.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{ContentRef, hex};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content {sha256} is not in the store ({path})")]
    Missing { sha256: String, path: String },
    #[error("content {sha256} is {len} bytes, over the {limit}-byte read limit")]
    TooLarge {
        sha256: String,
        len: u64,
        limit: u64,
    },
    #[error("content {sha256} in the store does not match its name (length or hash differs)")]
    Mismatch { sha256: String },
    #[error("content store I/O on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Reads content by reference. Implementations must return exactly the referenced bytes or an
/// error.
pub trait ContentStore: Send + Sync {
    fn read(&self, content: &ContentRef, limit: u64) -> Result<Vec<u8>, ContentError>;

    /// Up to `n` leading bytes (for magic-byte sniffing), unchecked.
    fn head(&self, content: &ContentRef, n: usize) -> Result<Vec<u8>, ContentError> {
        let mut all = self.read(content, content.len)?;
        all.truncate(n);
        Ok(all)
    }
}

/// The filestore directory (`OUT/filestore`).
#[derive(Clone, Debug)]
pub struct Filestore {
    root: PathBuf,
}

impl Filestore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Filestore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where content with this hash lives.
    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex(sha256);
        self.root.join(&name[..2]).join(name)
    }

    /// Stores bytes under their hash (write to a temporary name, fsync, rename) and returns the
    /// reference; content already present is not rewritten.
    pub fn store(&self, bytes: &[u8]) -> Result<ContentRef, ContentError> {
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let path = self.path_of(&sha256);
        let io = |source| ContentError::Io {
            path: path.display().to_string(),
            source,
        };
        if !path.exists() {
            let dir = path.parent().unwrap_or(&self.root);
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
            let tmp = dir.join(format!(".{}.{}.tmp", hex(&sha256[..8]), std::process::id()));
            // Stored content is read back by this process only (as the filestore's own files).
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
            f.write_all(bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
        }
        Ok(ContentRef {
            sha256,
            len: bytes.len() as u64,
        })
    }
}

impl ContentStore for Filestore {
    fn read(&self, content: &ContentRef, limit: u64) -> Result<Vec<u8>, ContentError> {
        let name = hex(&content.sha256);
        if content.len > limit {
            return Err(ContentError::TooLarge {
                sha256: name,
                len: content.len,
                limit,
            });
        }
        let path = self.path_of(&content.sha256);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContentError::Missing {
                    sha256: name,
                    path: path.display().to_string(),
                });
            }
            Err(source) => {
                return Err(ContentError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        // One byte past the expected length tells a longer file from an exact one without reading
        // an unbounded amount.
        let mut bytes = Vec::with_capacity(usize::try_from(content.len).unwrap_or(0));
        file.take(content.len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| ContentError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if bytes.len() as u64 != content.len || digest != content.sha256 {
            return Err(ContentError::Mismatch { sha256: name });
        }
        Ok(bytes)
    }

    fn head(&self, content: &ContentRef, n: usize) -> Result<Vec<u8>, ContentError> {
        let path = self.path_of(&content.sha256);
        let io = |source| ContentError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContentError::Missing {
                    sha256: hex(&content.sha256),
                    path: path.display().to_string(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        let mut bytes = Vec::with_capacity(n);
        file.take(n as u64).read_to_end(&mut bytes).map_err(io)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_content_reads_back_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Filestore::new(dir.path());
        let r = fs.store(b"MZ\x90\x00payload").unwrap();
        assert_eq!(r.len, 11);
        assert_eq!(fs.read(&r, 1 << 20).unwrap(), b"MZ\x90\x00payload");
        assert_eq!(fs.head(&r, 2).unwrap(), b"MZ");
        assert!(
            fs.path_of(&r.sha256)
                .starts_with(dir.path().join(&hex(&r.sha256)[..2]))
        );
        assert!(matches!(
            fs.read(&r, 10),
            Err(ContentError::TooLarge {
                len: 11,
                limit: 10,
                ..
            })
        ));
        std::fs::write(fs.path_of(&r.sha256), b"MZ\x90\x00payloaX").unwrap();
        assert!(matches!(
            fs.read(&r, 1 << 20),
            Err(ContentError::Mismatch { .. })
        ));
        let missing = ContentRef {
            sha256: [7; 32],
            len: 1,
        };
        assert!(matches!(
            fs.read(&missing, 1 << 20),
            Err(ContentError::Missing { .. })
        ));
    }

    #[test]
    fn stored_content_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fs = Filestore::new(&dir.path().join("store"));
        let r = fs.store(b"secret").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let path = fs.path_of(&r.sha256);
        assert_eq!(mode(&path) & 0o077, 0);
        assert_eq!(mode(path.parent().unwrap()) & 0o077, 0);
    }
}
