//! Reputation hits as EVE `alert` records that Suricata tools read: a reserved `gid`, a stable
//! `signature_id` per feed (and per web/mail traffic), a `signature` naming the feed and its
//! category, plus Weir's `reputation` object saying what matched and where it was seen.

use serde_json::{Value, json};
use weir_core::ArtifactContext;
use weir_core::eve::{self, FlowHeader, Record};

use super::Hit;

/// The generator id of every reputation alert: rules use 1 (Suricata's default), so a
/// reputation `signature_id` can never be mistaken for a rule's.
pub const REPUTATION_GID: u32 = 9;

/// First signature id of the reputation range.
pub const SID_BASE: u32 = 9_000_000;

/// Feeds hash into this many slots of two ids each (web, then mail): ids run from [`SID_BASE`]
/// to `SID_BASE + 2 * SID_SLOTS - 1` = 9,999,999.
pub const SID_SLOTS: u32 = 500_000;

/// The web-traffic signature id of a feed named `name` (mail is `+ 1`): FNV-1a of the name into
/// [`SID_SLOTS`], so it stays the same across restarts, reloads and sensors.
pub fn signature_id_base(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    SID_BASE + 2 * (h % SID_SLOTS)
}

fn traffic(hit: &Hit) -> &'static str {
    if hit.seen_in.is_mail() { "mail" } else { "web" }
}

/// Suricata's classification text and severity for the usual feed categories (the text of
/// `trojan-activity`, `social-engineering`, `bad-unknown` in classification.config).
fn classification(category: &str) -> (&'static str, u8) {
    match category.to_ascii_lowercase().as_str() {
        "malware" | "c2" | "botnet" | "ransomware" | "trojan" => {
            ("A Network Trojan was detected", 1)
        }
        "phishing" | "scam" | "fraud" => ("Possible Social Engineering Attempted", 2),
        _ => ("Potentially Bad Traffic", 2),
    }
}

/// The EVE `alert` object: `action`, `gid`, `signature_id`, `rev`, `signature`, `category`,
/// `severity`, in Suricata's order.
pub fn alert_object(hit: &Hit) -> Value {
    let (category, severity) = classification(&hit.category);
    json!({
        "action": "allowed",
        "gid": REPUTATION_GID,
        "signature_id": hit.signature_id,
        "rev": 1,
        "signature": format!("WEIR REPUTATION {} ({}) indicator seen in {} traffic", hit.feed, hit.category, traffic(hit)),
        "category": category,
        "severity": severity,
    })
}

/// Weir's `reputation` object: the feed, its category, what was listed, how it matched, where
/// it was seen (`http.url`, `http.host`, `email.url`, `dns.query`, `tls.sni`, `file.sha256`,
/// ...), web or mail traffic, and the value as seen.
pub fn reputation_object(hit: &Hit) -> Value {
    json!({
        "feed": &*hit.feed,
        "category": &*hit.category,
        "indicator": hit.indicator,
        "indicator_type": hit.indicator_type.eve(),
        "match": hit.match_kind.eve(),
        "seen_in": hit.seen_in.eve(),
        "traffic": traffic(hit),
        "value": hit.observed,
    })
}

/// A whole EVE `alert` record for a hit on an artifact of the flow and transaction in `ctx`:
/// the common header, `tx_id`, `alert`, `app_proto`, `reputation`.
pub fn alert_record(hit: &Hit, ctx: &ArtifactContext) -> Record {
    let header = FlowHeader {
        flow_id: ctx.flow_id,
        key: ctx.key,
        app_proto: ctx.app_proto,
    };
    let mut r = eve::record(ctx.ts, "alert", Some(&header));
    if let Some(tx) = ctx.tx_id {
        r.insert("tx_id".into(), Value::from(tx));
    }
    r.insert("alert".into(), alert_object(hit));
    if let Some(proto) = ctx.app_proto {
        r.insert("app_proto".into(), Value::from(proto.eve_name()));
    }
    r.insert("reputation".into(), reputation_object(hit));
    r
}
