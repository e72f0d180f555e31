//! What a parser hands back while consuming a stream: EVE event bodies, anomalies and artifacts.

use serde_json::{Map, Value};
use weir_core::{Anomaly, Artifact, Direction, Timestamp};

/// One EVE event body produced by a parser. The worker adds the common header (timestamp,
/// flow_id, addresses, app_proto) and writes `fields` after it, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct AppEvent {
    pub ts: Timestamp,
    /// EVE `event_type`: `"http"`, `"fileinfo"`, `"dns"`, `"tls"`, ...
    pub event_type: &'static str,
    /// The transaction the event belongs to, when the protocol has transactions.
    pub tx_id: Option<u64>,
    /// The direction of the data that completed the event (for header orientation of packet-ish
    /// events such as DNS, whose records are written in the direction of the message).
    pub direction: Direction,
    /// The fields after the header, e.g. `{"tx_id": 0, "http": {...}}` or `{"dns": {...}}`.
    pub fields: Map<String, Value>,
}

/// A condition met while parsing on which the flow's exception policy decides
/// (`[exception_policy]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParserException {
    /// The parser met input it cannot parse and gives up on (part of) the flow: Suricata's
    /// app-layer parser error.
    Error,
    /// A header block was cut at the shared held-header budget.
    HeaderMemcap,
    /// An unfinished mail message was cut at the shared held-message budget.
    MessageMemcap,
}

/// Collects what parsers produce; the owner drains it after each call.
#[derive(Debug, Default)]
pub struct Emit {
    pub events: Vec<AppEvent>,
    pub anomalies: Vec<(Timestamp, Anomaly)>,
    pub artifacts: Vec<(Timestamp, Option<u64>, Artifact)>,
    /// Conditions for the flow's exception policy, in the order they were met. Parsers raise
    /// `Error` at most once per flow, so this stays short.
    pub exceptions: Vec<(Timestamp, ParserException)>,
}

impl Emit {
    pub fn event(&mut self, event: AppEvent) {
        self.events.push(event);
    }

    pub fn anomaly(&mut self, ts: Timestamp, anomaly: Anomaly) {
        self.anomalies.push((ts, anomaly));
    }

    pub fn artifact(&mut self, ts: Timestamp, tx_id: Option<u64>, artifact: Artifact) {
        self.artifacts.push((ts, tx_id, artifact));
    }

    pub fn exception(&mut self, ts: Timestamp, e: ParserException) {
        self.exceptions.push((ts, e));
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.anomalies.is_empty() && self.artifacts.is_empty() && self.exceptions.is_empty()
    }
}

/// A parser's per-flow counts of its anomalies by name. Parsers log only the first few of each
/// as records, so one malformation repeated a million times cannot flood eve.json, while the
/// count stays exact.
#[derive(Clone, Debug, Default)]
pub struct AnomalyCounter {
    counts: Vec<(&'static str, u64)>,
}

impl AnomalyCounter {
    /// Counts one more `event`; returns how many there have been, this one included.
    pub fn raise(&mut self, event: &'static str) -> u64 {
        match self.counts.iter_mut().find(|(e, _)| *e == event) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counts.push((event, 1));
                1
            }
        }
    }

    /// How often `event` was raised.
    pub fn count(&self, event: &str) -> u64 {
        self.counts.iter().find(|(e, _)| *e == event).map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::AnomalyCounter;

    #[test]
    fn counts_each_event_on_its_own() {
        let mut c = AnomalyCounter::default();
        assert_eq!(c.raise("http.a"), 1);
        assert_eq!(c.raise("http.b"), 1);
        assert_eq!(c.raise("http.a"), 2);
        assert_eq!((c.count("http.a"), c.count("http.b"), c.count("http.c")), (2, 1, 0));
    }
}
