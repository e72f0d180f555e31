//! `threshold` and `detection_filter`: per-rule counters keyed by source, destination, both,
//! the rule, or the flow, over windows of packet time (Suricata's detect-engine-threshold).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use weir_core::{FlowKey, Timestamp};

use crate::rules::{DetectionFilter, Threshold, ThresholdKind, Track};

/// Most tracking entries kept over all rules. When full, expired entries are dropped; when
/// still full, a new key is judged as a first sighting without being remembered (it can alert
/// more often than its threshold allows, never less).
pub const MAX_THRESHOLD_ENTRIES: usize = 65_536;

/// Most distinct ports one `detection_filter ... unique_on` entry remembers. An entry keeps at
/// most `count + 1` (past its count the filter only needs to know it was exceeded); a filter
/// whose count is this or more treats this many distinct ports as exceeding it.
pub const MAX_UNIQUE_PORTS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Ip(IpAddr),
    Pair(IpAddr, IpAddr),
    Rule,
    Flow(FlowKey),
}

#[derive(Debug)]
struct Entry {
    window_start: Timestamp,
    count: u64,
    /// `backoff`: the count at which the next alert fires.
    next_alert: u64,
    unique: HashSet<u16>,
    /// Seconds of the rule's window, for expiry when the table is full.
    seconds: u32,
}

/// Per-worker threshold and detection-filter tables.
#[derive(Debug, Default)]
pub struct Thresholds {
    entries: HashMap<(u32, u32, bool, Subject), Entry>,
}

fn subject(track: Track, key: &FlowKey) -> Subject {
    match track {
        Track::BySrc => Subject::Ip(key.src_ip),
        Track::ByDst => Subject::Ip(key.dst_ip),
        Track::ByBoth => {
            // Suricata's by_both is the unordered address pair.
            let (a, b) = if key.src_ip <= key.dst_ip {
                (key.src_ip, key.dst_ip)
            } else {
                (key.dst_ip, key.src_ip)
            };
            Subject::Pair(a, b)
        }
        Track::ByRule => Subject::Rule,
        Track::ByFlow => Subject::Flow(key.canonical().0),
    }
}

fn multiplier(t: &Threshold) -> u64 {
    u64::from(t.multiplier.unwrap_or(1)).max(1)
}

fn within(now: Timestamp, start: Timestamp, seconds: u32) -> bool {
    now.as_nanos().saturating_sub(start.as_nanos()) <= u64::from(seconds) * 1_000_000_000
}

impl Thresholds {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Timestamp) -> bool {
        if self.entries.len() < MAX_THRESHOLD_ENTRIES {
            return true;
        }
        self.entries
            .retain(|_, e| within(now, e.window_start, e.seconds));
        self.entries.len() < MAX_THRESHOLD_ENTRIES
    }

    /// `detection_filter`: true when this match may alert (the count was exceeded within the
    /// window).
    pub(crate) fn detection_filter(
        &mut self,
        gid: u32,
        sid: u32,
        df: &DetectionFilter,
        key: &FlowKey,
        now: Timestamp,
    ) -> bool {
        let id = (gid, sid, true, subject(df.track, key));
        let port = match df.unique_on.as_deref() {
            Some("src_port") => Some(key.src_port),
            Some("dst_port") => Some(key.dst_port),
            _ => None,
        };
        let count = u64::from(df.count);
        if let Some(e) = self.entries.get_mut(&id) {
            if within(now, e.window_start, df.seconds) {
                match port {
                    Some(p) => {
                        let cap = usize::try_from(count)
                            .unwrap_or(usize::MAX)
                            .saturating_add(1)
                            .min(MAX_UNIQUE_PORTS);
                        if e.unique.len() < cap {
                            e.unique.insert(p);
                        }
                        e.count = e.unique.len() as u64;
                        if e.unique.len() >= MAX_UNIQUE_PORTS {
                            return true;
                        }
                    }
                    None => e.count += 1,
                }
            } else {
                e.window_start = now;
                e.count = 1;
                e.unique.clear();
                if let Some(p) = port {
                    e.unique.insert(p);
                }
            }
            return e.count > count;
        }
        if self.make_room(now) {
            let mut unique = HashSet::new();
            if let Some(p) = port {
                unique.insert(p);
            }
            self.entries.insert(
                id,
                Entry {
                    window_start: now,
                    count: 1,
                    next_alert: 0,
                    unique,
                    seconds: df.seconds,
                },
            );
        }
        count == 0
    }

    /// `threshold`: true when this match alerts.
    pub(crate) fn threshold(
        &mut self,
        gid: u32,
        sid: u32,
        t: &Threshold,
        key: &FlowKey,
        now: Timestamp,
    ) -> bool {
        let id = (gid, sid, false, subject(t.track, key));
        let count = u64::from(t.count);
        if let Some(e) = self.entries.get_mut(&id) {
            if t.kind == ThresholdKind::Backoff {
                // Backoff has no window: alerts on the count-th match, then each time the
                // match count reaches the previous mark times the multiplier (count 1,
                // multiplier 10: the 1st, 10th, 100th...).
                e.count += 1;
                if e.count == e.next_alert {
                    e.next_alert = e.next_alert.saturating_mul(multiplier(t));
                    return true;
                }
                return false;
            }
            if within(now, e.window_start, t.seconds) {
                e.count += 1;
                match t.kind {
                    ThresholdKind::Limit => e.count <= count,
                    ThresholdKind::Threshold => {
                        if e.count >= count {
                            e.count = 0;
                            true
                        } else {
                            false
                        }
                    }
                    ThresholdKind::Both => e.count == count,
                    ThresholdKind::Backoff => false,
                }
            } else {
                e.window_start = now;
                e.count = 1;
                match t.kind {
                    ThresholdKind::Limit => true,
                    ThresholdKind::Threshold => {
                        if count <= 1 {
                            e.count = 0;
                            true
                        } else {
                            false
                        }
                    }
                    ThresholdKind::Both => count <= 1,
                    ThresholdKind::Backoff => false,
                }
            }
        } else {
            let alerts = match t.kind {
                ThresholdKind::Limit => true,
                ThresholdKind::Threshold | ThresholdKind::Both | ThresholdKind::Backoff => {
                    count <= 1
                }
            };
            if self.make_room(now) {
                let (stored_count, next_alert) = match t.kind {
                    ThresholdKind::Threshold if count <= 1 => (0, 0),
                    ThresholdKind::Backoff if count <= 1 => (1, multiplier(t)),
                    ThresholdKind::Backoff => (1, count),
                    _ => (1, 0),
                };
                self.entries.insert(
                    id,
                    Entry {
                        window_start: now,
                        count: stored_count,
                        next_alert,
                        unique: HashSet::new(),
                        seconds: if t.kind == ThresholdKind::Backoff {
                            u32::MAX
                        } else {
                            t.seconds
                        },
                    },
                );
            }
            alerts
        }
    }
}
