//! Verdicts already known, by dedup key (`sha256:<hex>` or `url:<normalised>`): on disk with a TTL
//! (so a restart does not resubmit what the sandbox already judged) and in memory with an LRU.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lru::LruCache;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

const VERDICTS: TableDefinition<&str, &[u8]> = TableDefinition::new("verdicts");
const FILE_NAME: &str = "verdicts.redb";

/// What the sandbox said about one artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedVerdict {
    pub task_id: u64,
    pub status: String,
    pub score: Option<f64>,
    pub family: Option<String>,
    /// `malicious`, `suspicious`, `clean`, `unknown`
    pub verdict: String,
    /// Milliseconds since the UNIX epoch.
    pub at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("verdict cache {path}: {message}")]
pub struct CacheError {
    path: String,
    message: String,
}

pub struct VerdictCache {
    db: Database,
    memory: Mutex<LruCache<String, CachedVerdict>>,
    ttl: Duration,
    path: String,
}

impl VerdictCache {
    pub fn open(dir: &Path, ttl: Duration, entries: usize) -> Result<VerdictCache, CacheError> {
        let path = dir.join(FILE_NAME).display().to_string();
        let err = |e: &dyn std::fmt::Display| CacheError {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let db = Database::create(dir.join(FILE_NAME)).map_err(|e| err(&e))?;
        let tx = db.begin_write().map_err(|e| err(&e))?;
        tx.open_table(VERDICTS).map_err(|e| err(&e))?;
        tx.commit().map_err(|e| err(&e))?;
        let cap = NonZeroUsize::new(entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(VerdictCache {
            db,
            memory: Mutex::new(LruCache::new(cap)),
            ttl,
            path,
        })
    }

    /// A verdict younger than the TTL.
    pub fn get(&self, key: &str, now: SystemTime) -> Option<CachedVerdict> {
        let fresh =
            |v: &CachedVerdict| unix_ms(now).saturating_sub(v.at_ms) <= self.ttl.as_millis() as u64;
        if let Ok(mut m) = self.memory.lock()
            && let Some(v) = m.get(key)
        {
            if fresh(v) {
                return Some(v.clone());
            }
            m.pop(key);
        }
        let v = self.read_disk(key)?;
        if !fresh(&v) {
            return None;
        }
        if let Ok(mut m) = self.memory.lock() {
            m.put(key.to_string(), v.clone());
        }
        Some(v)
    }

    /// Stores a verdict durably; a failure is logged, as a lost cache entry costs a resubmission,
    /// not a verdict.
    pub fn put(&self, key: &str, v: &CachedVerdict) {
        if let Ok(mut m) = self.memory.lock() {
            m.put(key.to_string(), v.clone());
        }
        let write = || -> Result<(), redb::Error> {
            let mut tx = self.db.begin_write()?;
            // Not fsync'd: a verdict lost to a crash costs a resubmission of a later sighting. The
            // periodic purge's durable commit makes earlier ones durable.
            if tx.set_durability(redb::Durability::None).is_err() {
                tracing::debug!("verdict cache: durability setting refused; committing durably");
            }
            let bytes = serde_json::to_vec(v).unwrap_or_default();
            tx.open_table(VERDICTS)?.insert(key, bytes.as_slice())?;
            tx.commit()?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::error!(path = %self.path, "verdict cache write failed: {e}");
        }
    }

    /// Removes entries past the TTL from disk; returns how many.
    pub fn purge(&self, now: SystemTime) -> usize {
        let cutoff = unix_ms(now).saturating_sub(self.ttl.as_millis() as u64);
        let run = || -> Result<usize, redb::Error> {
            let tx = self.db.begin_write()?;
            let removed = {
                let mut t = tx.open_table(VERDICTS)?;
                let before = redb::ReadableTableMetadata::len(&t)?;
                t.retain(|_, v| {
                    serde_json::from_slice::<CachedVerdict>(v).is_ok_and(|c| c.at_ms >= cutoff)
                })?;
                before - redb::ReadableTableMetadata::len(&t)?
            };
            tx.commit()?;
            Ok(removed as usize)
        };
        run().unwrap_or_else(|e| {
            tracing::error!(path = %self.path, "verdict cache purge failed: {e}");
            0
        })
    }

    fn read_disk(&self, key: &str) -> Option<CachedVerdict> {
        let tx = self.db.begin_read().ok()?;
        let t = tx.open_table(VERDICTS).ok()?;
        let v = t.get(key).ok()??;
        serde_json::from_slice(v.value()).ok()
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(at_ms: u64) -> CachedVerdict {
        CachedVerdict {
            task_id: 7,
            status: "reported".into(),
            score: Some(9.0),
            family: Some("X".into()),
            verdict: "malicious".into(),
            at_ms,
        }
    }

    #[test]
    fn verdicts_survive_reopening_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        {
            let c = VerdictCache::open(dir.path(), 7 * day, 2).unwrap();
            c.put("sha256:aa", &verdict(unix_ms(t0)));
            assert_eq!(c.get("sha256:aa", t0).unwrap().task_id, 7);
            // The LRU holds two; the third pushes the first out of memory, not off disk.
            c.put("sha256:bb", &verdict(unix_ms(t0)));
            c.put("sha256:cc", &verdict(unix_ms(t0)));
            assert_eq!(c.get("sha256:aa", t0 + day).unwrap().verdict, "malicious");
        }
        let c = VerdictCache::open(dir.path(), 7 * day, 2).unwrap();
        assert!(c.get("sha256:aa", t0 + 7 * day).is_some());
        assert!(c.get("sha256:aa", t0 + 8 * day).is_none(), "past the TTL");
        assert!(c.get("url:http://x/", t0).is_none());
        assert_eq!(c.purge(t0 + 8 * day), 3);
        assert!(c.get("sha256:bb", t0).is_none(), "purged from disk");
    }
}
