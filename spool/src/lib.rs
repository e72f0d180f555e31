//! Durable named queues for Weir's outbound edge: the sandbox dispatcher and the Central Node link
//! share this one mechanism.
//!
//! An item is metadata (a JSON value) plus either nothing, its bytes inline, or a reference into a
//! content-addressed store (the filestore, `OUT/filestore/<aa>/<sha256>`). [`Spool::push`] returns
//! only after the item is on disk (an fsync'd redb commit), so a caller may start its first delivery
//! attempt knowing a crash, even `kill -9`, will not lose it. An item leaves only by
//! [`Spool::ack`] (delivered), [`Spool::ack_and_push`] (delivered, and a follow-up item takes its
//! place in one transaction) or [`Spool::expire`] (older than the retention: dropped with a counted,
//! logged [`Expired`] record). Each queue is ordered by enqueue order.
//!
//! The spool is capped in bytes and items. A push that would pass a cap is refused with
//! [`SpoolError::Full`] and an error log line; nothing already stored is touched.
//!
//! ```
//! use weir_spool::{NewItem, Payload, Spool, SpoolConfig};
//! let dir = tempfile::tempdir().unwrap();
//! let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
//! let id = spool.push("events", NewItem::new(serde_json::json!({"n": 1}), Payload::Inline(b"{}".to_vec()))).unwrap();
//! let first = &spool.peek("events", None, 10).unwrap()[0];
//! assert_eq!(first.id, id);
//! assert!(spool.ack("events", id).unwrap());
//! assert_eq!(spool.stats().unwrap().items, 0);
//! ```

mod content;

pub use content::{ContentError, ContentStore, Filestore};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long an undelivered item is kept (SPEC section 7: `retention_days`, default 21).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(21 * 24 * 3600);
/// Default cap on the bytes the spool holds (metadata and inline payloads; referenced content is
/// the filestore's to bound).
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;
/// Default cap on the number of items over all queues.
pub const DEFAULT_MAX_ITEMS: u64 = 1_000_000;
/// Largest metadata of one item once encoded: metadata describes, the bytes go in the payload.
pub const MAX_META_BYTES: usize = 64 << 10;
/// Largest inline payload of one item; bigger content belongs in the content store.
pub const MAX_INLINE_BYTES: usize = 64 << 20;
/// Longest queue name.
pub const MAX_QUEUE_NAME: usize = 64;

const ITEMS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("items");
const INLINE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inline");
/// queue -> (next sequence number, depth)
const QUEUES: TableDefinition<&str, (u64, u64)> = TableDefinition::new("queues");
/// "used_bytes", "items", "dropped_retention"
const TOTALS: TableDefinition<&str, u64> = TableDefinition::new("totals");

const FILE_NAME: &str = "spool.redb";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool full: queue {queue} refused an item of {needed} bytes ({used_items} items, {used_bytes} bytes used of {max_items} items, {max_bytes} bytes)"
    )]
    Full {
        queue: String,
        needed: u64,
        used_bytes: u64,
        max_bytes: u64,
        used_items: u64,
        max_items: u64,
    },
    #[error("spool item metadata is {len} bytes, over the {MAX_META_BYTES}-byte limit")]
    MetaTooLarge { len: usize },
    #[error("spool inline payload is {len} bytes, over the {MAX_INLINE_BYTES}-byte limit")]
    InlineTooLarge { len: usize },
    #[error("invalid spool queue name (1..={MAX_QUEUE_NAME} bytes of [A-Za-z0-9._-])")]
    BadQueueName,
    #[error("spool item {queue}#{id} not found")]
    NotFound { queue: String, id: u64 },
    #[error("spool item {queue}#{id} is corrupt: {reason}")]
    Corrupt {
        queue: String,
        id: u64,
        reason: String,
    },
    #[error("spool storage at {path}: {source}")]
    Storage { path: String, source: redb::Error },
    #[error("spool directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Caps and retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    pub max_bytes: u64,
    pub max_items: u64,
    pub retention: Duration,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            max_items: DEFAULT_MAX_ITEMS,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// A reference into a content-addressed store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentRef {
    pub sha256: [u8; 32],
    pub len: u64,
}

/// Where an item's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    None,
    Inline(Vec<u8>),
    Content(ContentRef),
}

/// An item to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub meta: Value,
    pub payload: Payload,
}

impl NewItem {
    pub fn new(meta: Value, payload: Payload) -> Self {
        NewItem { meta, payload }
    }
}

/// Position of an item in its queue; later items have larger ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(pub u64);

/// A stored item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub id: ItemId,
    pub enqueued_at: SystemTime,
    /// Delivery attempts recorded with [`Spool::record_attempt`]; survives restarts, so a consumer
    /// can tell an item that may already have reached its peer before a crash.
    pub attempts: u32,
    pub meta: Value,
    pub payload: Payload,
}

/// The record of an item dropped for age.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    pub queue: String,
    pub id: ItemId,
    pub enqueued_at: SystemTime,
    pub attempts: u32,
    pub meta: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub depth: u64,
    pub oldest: Option<SystemTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub items: u64,
    pub bytes: u64,
    /// Items dropped for age since the spool was created.
    pub dropped_retention: u64,
    /// Pushes refused because a cap was reached, since this process opened the spool.
    pub rejected_full: u64,
    pub queues: BTreeMap<String, QueueStats>,
}

impl SpoolStats {
    /// Age of the oldest item of any queue at `now`.
    pub fn oldest_age(&self, now: SystemTime) -> Option<Duration> {
        self.queues
            .values()
            .filter_map(|q| q.oldest)
            .min()
            .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO))
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Milliseconds since the UNIX epoch.
    t: u64,
    #[serde(default)]
    attempts: u32,
    meta: Value,
    /// "none" | "inline" | "content"
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default)]
    len: u64,
}

/// Durable named queues in one redb file. Cheap to share behind an `Arc`; every method is a short
/// transaction (writers are serialised by redb).
pub struct Spool {
    db: Database,
    config: SpoolConfig,
    path: String,
    rejected_full: AtomicU64,
}

impl Spool {
    /// Opens (creating when missing) the spool in `dir`.
    pub fn open(dir: &Path, config: SpoolConfig) -> Result<Spool, SpoolError> {
        // What waits here (alerts, files, messages, submissions) is the owner's alone.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| SpoolError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let file = dir.join(FILE_NAME);
        let path = file.display().to_string();
        let db = Database::create(&file).map_err(|e| SpoolError::Storage {
            path: path.clone(),
            source: e.into(),
        })?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|source| SpoolError::Io {
            path: path.clone(),
            source,
        })?;
        let spool = Spool {
            db,
            config,
            path,
            rejected_full: AtomicU64::new(0),
        };
        // Create the tables so readers never meet a missing one.
        spool.write(|tx| {
            tx.open_table(ITEMS)?;
            tx.open_table(INLINE)?;
            tx.open_table(QUEUES)?;
            tx.open_table(TOTALS)?;
            Ok(())
        })?;
        Ok(spool)
    }

    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// Enqueues an item; on `Ok` it is on disk.
    pub fn push(&self, queue: &str, item: NewItem) -> Result<ItemId, SpoolError> {
        self.push_at(queue, item, SystemTime::now())
    }

    /// [`Spool::push`] with an explicit enqueue time (tests, re-imports).
    pub fn push_at(
        &self,
        queue: &str,
        item: NewItem,
        now: SystemTime,
    ) -> Result<ItemId, SpoolError> {
        check_queue(queue)?;
        let (record, inline) = encode_new(&item, now)?;
        self.write(|tx| insert(tx, &self.config, queue, &record, inline, 0).map(ItemId))
            .inspect_err(|e| self.note_full(e))
    }

    /// Enqueues several items, each into its queue, in one transaction (one fsync). Each item
    /// gets its own result: one refused for a cap or its size does not stop the others. `Err` only
    /// when the storage failed, and then nothing was stored.
    pub fn push_batch(
        &self,
        items: Vec<(String, NewItem)>,
    ) -> Result<Vec<Result<ItemId, SpoolError>>, SpoolError> {
        let now = SystemTime::now();
        let results = self.write(|tx| {
            let mut results = Vec::with_capacity(items.len());
            for (queue, item) in &items {
                let one = check_queue(queue)
                    .and_then(|()| encode_new(item, now))
                    .and_then(|(record, inline)| {
                        insert(tx, &self.config, queue, &record, inline, 0).map(ItemId)
                    });
                match one {
                    Err(SpoolError::Storage { .. }) => return one.map(|_| Vec::new()),
                    other => results.push(other),
                }
            }
            Ok(results)
        })?;
        for r in &results {
            if let Err(e) = r {
                self.note_full(e);
            }
        }
        Ok(results)
    }

    /// Up to `limit` items of `queue` after `after` (from the start when `None`), oldest first.
    pub fn peek(
        &self,
        queue: &str,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<Item>, SpoolError> {
        let start = after.map_or(0, |a| a.0.saturating_add(1));
        self.read(|tx| {
            let items = tx.open_table(ITEMS)?;
            let inline = tx.open_table(INLINE)?;
            let mut out = Vec::new();
            for entry in items.range((queue, start)..=(queue, u64::MAX))? {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = entry?;
                let id = k.value().1;
                out.push(decode(queue, id, v.value(), &inline)?);
            }
            Ok(out)
        })
    }

    /// Ids of up to `limit` items of `queue` after `after`, oldest first, without reading the
    /// items: cheap enough to scan on every scheduling decision.
    pub fn ids(
        &self,
        queue: &str,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<ItemId>, SpoolError> {
        let start = after.map_or(0, |a| a.0.saturating_add(1));
        self.read(|tx| {
            let items = tx.open_table(ITEMS)?;
            let mut out = Vec::new();
            for entry in items.range((queue, start)..=(queue, u64::MAX))? {
                if out.len() >= limit {
                    break;
                }
                out.push(ItemId(entry?.0.value().1));
            }
            Ok(out)
        })
    }

    /// One item, when still queued.
    pub fn get(&self, queue: &str, id: ItemId) -> Result<Option<Item>, SpoolError> {
        self.read(|tx| {
            let items = tx.open_table(ITEMS)?;
            let inline = tx.open_table(INLINE)?;
            match items.get((queue, id.0))? {
                Some(v) => Ok(Some(decode(queue, id.0, v.value(), &inline)?)),
                None => Ok(None),
            }
        })
    }

    /// Replaces an item's metadata (for example to record the task a peer assigned), durably.
    pub fn update_meta(&self, queue: &str, id: ItemId, meta: Value) -> Result<(), SpoolError> {
        self.modify(queue, id, |s| s.meta = meta)
    }

    /// Counts a delivery attempt before it starts; returns the new count.
    pub fn record_attempt(&self, queue: &str, id: ItemId) -> Result<u32, SpoolError> {
        let mut count = 0;
        self.modify(queue, id, |s| {
            s.attempts = s.attempts.saturating_add(1);
            count = s.attempts;
        })?;
        Ok(count)
    }

    /// Removes a delivered item; `false` when it was no longer queued.
    pub fn ack(&self, queue: &str, id: ItemId) -> Result<bool, SpoolError> {
        self.write(|tx| remove(tx, queue, id.0).map(|r| r.is_some()))
    }

    /// Removes several delivered items of one queue in one transaction; returns how many were
    /// still queued.
    pub fn ack_many(&self, queue: &str, ids: &[ItemId]) -> Result<usize, SpoolError> {
        self.write(|tx| {
            let mut removed = 0;
            for id in ids {
                if remove(tx, queue, id.0)?.is_some() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    /// Removes a delivered item and enqueues its follow-up (a verdict record to forward, say) in one
    /// transaction, so a crash leaves exactly one of the two.
    pub fn ack_and_push(
        &self,
        queue: &str,
        id: ItemId,
        to_queue: &str,
        item: NewItem,
    ) -> Result<ItemId, SpoolError> {
        check_queue(to_queue)?;
        let (record, inline) = encode_new(&item, SystemTime::now())?;
        self.write(|tx| {
            let freed = remove(tx, queue, id.0)?.ok_or_else(|| SpoolError::NotFound {
                queue: queue.to_string(),
                id: id.0,
            })?;
            insert(tx, &self.config, to_queue, &record, inline, freed).map(ItemId)
        })
        .inspect_err(|e| self.note_full(e))
    }

    /// Drops every item enqueued more than the retention before `now`, logging each, and returns
    /// their records. Each queue is scanned from its oldest item and stops at the first young one.
    pub fn expire(&self, now: SystemTime) -> Result<Vec<Expired>, SpoolError> {
        let cutoff = now.checked_sub(self.config.retention).unwrap_or(UNIX_EPOCH);
        let cutoff_ms = unix_ms(cutoff);
        let queues: Vec<String> = self.read(|tx| {
            let q = tx.open_table(QUEUES)?;
            let mut names = Vec::new();
            for entry in q.iter()? {
                let (k, v) = entry?;
                if v.value().1 > 0 {
                    names.push(k.value().to_string());
                }
            }
            Ok(names)
        })?;
        let mut dropped = Vec::new();
        for queue in queues {
            let old = self.read(|tx| {
                let items = tx.open_table(ITEMS)?;
                let inline = tx.open_table(INLINE)?;
                let mut old = Vec::new();
                for entry in items.range((queue.as_str(), 0)..=(queue.as_str(), u64::MAX))? {
                    let (k, v) = entry?;
                    let item = decode(&queue, k.value().1, v.value(), &inline)?;
                    if unix_ms(item.enqueued_at) >= cutoff_ms {
                        break;
                    }
                    old.push(item);
                }
                Ok(old)
            })?;
            if old.is_empty() {
                continue;
            }
            self.write(|tx| {
                let mut removed = 0u64;
                for item in &old {
                    if remove(tx, &queue, item.id.0)?.is_some() {
                        removed += 1;
                    }
                }
                add_total(tx, "dropped_retention", removed as i64)?;
                Ok(())
            })?;
            for item in old {
                tracing::warn!(
                    queue = %queue, id = item.id.0, attempts = item.attempts, meta = %item.meta,
                    "spool item dropped: older than the retention of {} days",
                    self.config.retention.as_secs() / 86_400
                );
                dropped.push(Expired {
                    queue: queue.clone(),
                    id: item.id,
                    enqueued_at: item.enqueued_at,
                    attempts: item.attempts,
                    meta: item.meta,
                });
            }
        }
        Ok(dropped)
    }

    /// Depth and oldest item of every queue, totals and counters.
    pub fn stats(&self) -> Result<SpoolStats, SpoolError> {
        let mut stats = self.read(|tx| {
            let q = tx.open_table(QUEUES)?;
            let items = tx.open_table(ITEMS)?;
            let totals = tx.open_table(TOTALS)?;
            let total = |k: &str| -> Result<u64, redb::Error> {
                Ok(totals.get(k)?.map_or(0, |v| v.value()))
            };
            let mut stats = SpoolStats {
                items: total("items")?,
                bytes: total("used_bytes")?,
                dropped_retention: total("dropped_retention")?,
                ..SpoolStats::default()
            };
            for entry in q.iter()? {
                let (k, v) = entry?;
                let name = k.value().to_string();
                let depth = v.value().1;
                let mut oldest = None;
                if let Some(first) = items
                    .range((name.as_str(), 0)..=(name.as_str(), u64::MAX))?
                    .next()
                {
                    let (_, rec) = first?;
                    if let Ok(s) = serde_json::from_slice::<Stored>(rec.value()) {
                        oldest = Some(from_unix_ms(s.t));
                    }
                }
                stats.queues.insert(name, QueueStats { depth, oldest });
            }
            Ok(stats)
        })?;
        stats.rejected_full = self.rejected_full.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// Depth of one queue.
    pub fn depth(&self, queue: &str) -> Result<u64, SpoolError> {
        self.read(|tx| {
            Ok(tx
                .open_table(QUEUES)?
                .get(queue)?
                .map_or(0, |v| v.value().1))
        })
    }

    fn modify(
        &self,
        queue: &str,
        id: ItemId,
        change: impl FnOnce(&mut Stored),
    ) -> Result<(), SpoolError> {
        self.write(|tx| {
            let mut items = tx.open_table(ITEMS)?;
            let old = match items.get((queue, id.0))? {
                Some(v) => v.value().to_vec(),
                None => {
                    return Err(SpoolError::NotFound {
                        queue: queue.to_string(),
                        id: id.0,
                    });
                }
            };
            let mut stored: Stored =
                serde_json::from_slice(&old).map_err(|e| corrupt(queue, id.0, e))?;
            change(&mut stored);
            let new = encode(&stored)?;
            items.insert((queue, id.0), new.as_slice())?;
            drop(items);
            add_total(tx, "used_bytes", new.len() as i64 - old.len() as i64)?;
            Ok(())
        })
    }

    fn note_full(&self, e: &SpoolError) {
        if let SpoolError::Full { .. } = e {
            self.rejected_full.fetch_add(1, Ordering::Relaxed);
            tracing::error!("{e}");
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        let tx = self.db.begin_write().map_err(|e| self.storage(e))?;
        // On error the transaction is dropped, which aborts it.
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.storage(e))?;
        Ok(out)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        let tx = self.db.begin_read().map_err(|e| self.storage(e))?;
        f(&tx)
    }

    fn storage(&self, e: impl Into<redb::Error>) -> SpoolError {
        SpoolError::Storage {
            path: self.path.clone(),
            source: e.into(),
        }
    }
}

impl From<redb::Error> for SpoolError {
    fn from(source: redb::Error) -> Self {
        SpoolError::Storage {
            path: FILE_NAME.to_string(),
            source,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for SpoolError {
            fn from(e: $t) -> Self {
                SpoolError::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError);

fn check_queue(queue: &str) -> Result<(), SpoolError> {
    let ok = !queue.is_empty()
        && queue.len() <= MAX_QUEUE_NAME
        && queue
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SpoolError::BadQueueName)
    }
}

fn encode(stored: &Stored) -> Result<Vec<u8>, SpoolError> {
    // Serialising a struct of plain fields and a `Value` cannot fail.
    let bytes = serde_json::to_vec(stored).unwrap_or_default();
    if bytes.len() > MAX_META_BYTES {
        return Err(SpoolError::MetaTooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

fn encode_new(item: &NewItem, now: SystemTime) -> Result<(Vec<u8>, Option<&[u8]>), SpoolError> {
    let (kind, sha256, len, inline) = match &item.payload {
        Payload::None => ("none", None, 0, None),
        Payload::Inline(b) => {
            if b.len() > MAX_INLINE_BYTES {
                return Err(SpoolError::InlineTooLarge { len: b.len() });
            }
            ("inline", None, b.len() as u64, Some(b.as_slice()))
        }
        Payload::Content(r) => ("content", Some(hex(&r.sha256)), r.len, None),
    };
    let stored = Stored {
        t: unix_ms(now),
        attempts: 0,
        meta: item.meta.clone(),
        kind: kind.into(),
        sha256,
        len,
    };
    Ok((encode(&stored)?, inline))
}

/// Inserts at the queue's next sequence number, after checking the caps net of `freed` bytes
/// released by the same transaction.
fn insert(
    tx: &redb::WriteTransaction,
    config: &SpoolConfig,
    queue: &str,
    record: &[u8],
    inline: Option<&[u8]>,
    freed: u64,
) -> Result<u64, SpoolError> {
    let needed = (record.len() + inline.map_or(0, <[u8]>::len)) as u64;
    let (used_bytes, used_items) = {
        let totals = tx.open_table(TOTALS)?;
        (
            totals.get("used_bytes")?.map_or(0, |v| v.value()),
            totals.get("items")?.map_or(0, |v| v.value()),
        )
    };
    if used_bytes.saturating_add(needed).saturating_sub(freed) > config.max_bytes
        || used_items >= config.max_items
    {
        return Err(SpoolError::Full {
            queue: queue.to_string(),
            needed,
            used_bytes,
            max_bytes: config.max_bytes,
            used_items,
            max_items: config.max_items,
        });
    }
    let mut queues = tx.open_table(QUEUES)?;
    let (seq, depth) = queues.get(queue)?.map_or((1, 0), |v| v.value());
    queues.insert(queue, (seq + 1, depth + 1))?;
    drop(queues);
    tx.open_table(ITEMS)?.insert((queue, seq), record)?;
    if let Some(bytes) = inline {
        tx.open_table(INLINE)?.insert((queue, seq), bytes)?;
    }
    add_total(tx, "used_bytes", needed as i64)?;
    add_total(tx, "items", 1)?;
    Ok(seq)
}

/// Removes an item; returns the bytes it freed when it existed.
fn remove(tx: &redb::WriteTransaction, queue: &str, id: u64) -> Result<Option<u64>, SpoolError> {
    let record_len = match tx.open_table(ITEMS)?.remove((queue, id))? {
        Some(v) => v.value().len() as u64,
        None => return Ok(None),
    };
    let inline_len = tx
        .open_table(INLINE)?
        .remove((queue, id))?
        .map_or(0, |v| v.value().len() as u64);
    let mut queues = tx.open_table(QUEUES)?;
    let (seq, depth) = queues.get(queue)?.map_or((1, 1), |v| v.value());
    queues.insert(queue, (seq, depth.saturating_sub(1)))?;
    drop(queues);
    let freed = record_len + inline_len;
    add_total(tx, "used_bytes", -(freed as i64))?;
    add_total(tx, "items", -1)?;
    Ok(Some(freed))
}

fn add_total(tx: &redb::WriteTransaction, key: &str, delta: i64) -> Result<(), SpoolError> {
    let mut totals = tx.open_table(TOTALS)?;
    let old = totals.get(key)?.map_or(0, |v| v.value());
    let new = if delta >= 0 {
        old.saturating_add(delta as u64)
    } else {
        old.saturating_sub(delta.unsigned_abs())
    };
    totals.insert(key, new)?;
    Ok(())
}

fn decode(
    queue: &str,
    id: u64,
    record: &[u8],
    inline: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
) -> Result<Item, SpoolError> {
    let s: Stored = serde_json::from_slice(record).map_err(|e| corrupt(queue, id, e))?;
    let payload = match s.kind.as_str() {
        "none" => Payload::None,
        "inline" => match inline.get((queue, id))? {
            Some(v) => Payload::Inline(v.value().to_vec()),
            None => return Err(corrupt(queue, id, "inline payload missing")),
        },
        "content" => {
            let sha = s
                .sha256
                .as_deref()
                .and_then(unhex32)
                .ok_or_else(|| corrupt(queue, id, "bad content sha256"))?;
            Payload::Content(ContentRef {
                sha256: sha,
                len: s.len,
            })
        }
        other => {
            return Err(corrupt(
                queue,
                id,
                format!("unknown payload kind {other:?}"),
            ));
        }
    };
    Ok(Item {
        id: ItemId(id),
        enqueued_at: from_unix_ms(s.t),
        attempts: s.attempts,
        meta: s.meta,
        payload,
    })
}

fn corrupt(queue: &str, id: u64, reason: impl ToString) -> SpoolError {
    SpoolError::Corrupt {
        queue: queue.to_string(),
        id,
        reason: reason.to_string(),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
