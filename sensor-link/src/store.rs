//! The mail store (`OUT/mail/<aa>/<sha256>.eml`, SPEC section 3) as a content store, so emails
//! are read back with their length and hash checked like filestore content.

use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use weir_spool::{hex, ContentError, ContentRef, ContentStore};

/// Reads `<root>/<aa>/<sha256>.eml`.
#[derive(Clone, Debug)]
pub struct MailStore {
    root: PathBuf,
}

impl MailStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MailStore { root: root.into() }
    }

    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        let name = hex(sha256);
        self.root.join(&name[..2]).join(format!("{name}.eml"))
    }
}

impl ContentStore for MailStore {
    fn read(&self, content: &ContentRef, limit: u64) -> Result<Vec<u8>, ContentError> {
        let name = hex(&content.sha256);
        if content.len > limit {
            return Err(ContentError::TooLarge { sha256: name, len: content.len, limit });
        }
        let path = self.path_of(&content.sha256);
        let io = |source| ContentError::Io { path: path.display().to_string(), source };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContentError::Missing { sha256: name, path: path.display().to_string() });
            }
            Err(e) => return Err(io(e)),
        };
        // One byte past the expected length tells a longer file from an exact one.
        let mut bytes = Vec::new();
        file.take(content.len.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if bytes.len() as u64 != content.len || digest != content.sha256 {
            return Err(ContentError::Mismatch { sha256: name });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_eml_by_hash_and_refuses_a_changed_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::new(dir.path());
        let msg = b"From: a@example.org\r\n\r\nhi\r\n";
        let sha: [u8; 32] = Sha256::digest(msg).into();
        let path = store.path_of(&sha);
        assert!(path.to_string_lossy().ends_with(".eml"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, msg).unwrap();
        let r = ContentRef { sha256: sha, len: msg.len() as u64 };
        assert_eq!(store.read(&r, 1 << 20).unwrap(), msg);
        std::fs::write(&path, b"From: b@example.org\r\n\r\nhi\r\n").unwrap();
        assert!(matches!(store.read(&r, 1 << 20), Err(ContentError::Mismatch { .. })));
    }
}
