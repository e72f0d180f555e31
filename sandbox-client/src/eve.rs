//! Verdicts as EVE records: a `sandbox` record for every outcome, and an `alert` carrying the same
//! `sandbox` object when the verdict is malicious. Both carry the original flow's header.

use serde_json::{Map, Value};
use weir_core::ArtifactContext;
use weir_core::eve::{Record, put_addresses};

use crate::cache::CachedVerdict;

/// Signature id of the sandbox alert (Weir's private range).
pub const SANDBOX_ALERT_SID: u64 = 9_100_001;

/// The flow part of a record, kept in the spool item so a verdict hours later still names its flow.
pub fn flow_header(ctx: &ArtifactContext) -> Value {
    let mut r = Record::new();
    r.insert("timestamp".into(), Value::String(ctx.ts.eve()));
    r.insert("flow_id".into(), Value::from(ctx.flow_id));
    put_addresses(&mut r, &ctx.key);
    if let Some(p) = ctx.app_proto {
        r.insert("app_proto".into(), Value::String(p.eve_name().into()));
    }
    if let Some(tx) = ctx.tx_id {
        r.insert("tx_id".into(), Value::from(tx));
    }
    Value::Object(r)
}

/// Score to verdict word.
pub fn classify(
    score: Option<f64>,
    family: Option<&str>,
    malicious: f64,
    suspicious: f64,
) -> &'static str {
    match score {
        Some(s) if s >= malicious => "malicious",
        _ if family.is_some() => "malicious",
        Some(s) if s >= suspicious => "suspicious",
        Some(_) => "clean",
        None => "unknown",
    }
}

/// The `sandbox` object.
pub fn sandbox_object(
    api: &str,
    subject: &Value,
    v: &CachedVerdict,
    cached: bool,
    error: Option<&str>,
) -> Value {
    let mut o = Map::new();
    o.insert("api".into(), Value::String(api.into()));
    if let Some(s) = subject.as_object() {
        for (k, val) in s {
            o.insert(k.clone(), val.clone());
        }
    }
    if v.task_id != 0 {
        o.insert("task_id".into(), Value::from(v.task_id));
    }
    o.insert("status".into(), Value::String(v.status.clone()));
    if let Some(score) = v.score {
        o.insert("score".into(), Value::from(score));
    }
    if let Some(f) = &v.family {
        o.insert("family".into(), Value::String(f.clone()));
    }
    o.insert("verdict".into(), Value::String(v.verdict.clone()));
    o.insert("cached".into(), Value::Bool(cached));
    if let Some(e) = error {
        o.insert("error".into(), Value::String(e.into()));
    }
    Value::Object(o)
}

/// The records for one outcome: `sandbox`, then `alert` when malicious.
pub fn records(flow: &Value, sandbox: Value) -> Vec<Value> {
    let malicious = sandbox.get("verdict").and_then(Value::as_str) == Some("malicious");
    let mut out = vec![with_header(flow, "sandbox", |r| {
        r.insert("sandbox".into(), sandbox.clone());
    })];
    if malicious {
        let family = sandbox.get("family").and_then(Value::as_str);
        let what = sandbox
            .get("filename")
            .or_else(|| sandbox.get("url"))
            .and_then(Value::as_str)
            .unwrap_or("artifact");
        let signature = match family {
            Some(f) => format!("WEIR SANDBOX malicious verdict ({f}) for {what}"),
            None => format!("WEIR SANDBOX malicious verdict for {what}"),
        };
        out.push(with_header(flow, "alert", |r| {
            let mut a = Map::new();
            a.insert("action".into(), "allowed".into());
            a.insert("gid".into(), 1.into());
            a.insert("signature_id".into(), SANDBOX_ALERT_SID.into());
            a.insert("rev".into(), 1.into());
            a.insert("signature".into(), signature.into());
            a.insert("category".into(), "Malware Detected by Sandbox".into());
            a.insert("severity".into(), 1.into());
            r.insert("alert".into(), Value::Object(a));
            r.insert("sandbox".into(), sandbox.clone());
        }));
    }
    out
}

/// Suricata's order: timestamp, flow_id, event_type, addresses, proto, app_proto, then the body.
fn with_header(flow: &Value, event_type: &str, body: impl FnOnce(&mut Record)) -> Value {
    let mut r = Record::new();
    let f = flow.as_object();
    let mut put = |k: &str| {
        if let Some(v) = f.and_then(|f| f.get(k)) {
            r.insert(k.into(), v.clone());
        }
    };
    put("timestamp");
    put("flow_id");
    r.insert("event_type".into(), Value::String(event_type.into()));
    if let Some(f) = f {
        for (k, v) in f {
            if !matches!(k.as_str(), "timestamp" | "flow_id") {
                r.insert(k.clone(), v.clone());
            }
        }
    }
    body(&mut r);
    Value::Object(r)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_malicious_verdict_gives_a_sandbox_record_and_an_alert() {
        let flow = flow_header(&crate::policy::test_ctx());
        let v = CachedVerdict {
            task_id: 12,
            status: "reported".into(),
            score: Some(9.5),
            family: Some("Emotet".into()),
            verdict: "malicious".into(),
            at_ms: 0,
        };
        let subject = json!({"sha256": "ab".repeat(32), "filename": "inv.exe", "size": 1000});
        let recs = records(&flow, sandbox_object("cape", &subject, &v, false, None));
        assert_eq!(recs.len(), 2);
        let keys: Vec<&str> = recs[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "flow_id",
                "event_type",
                "src_ip",
                "src_port",
                "dest_ip",
                "dest_port",
                "proto",
                "ip_v",
                "tx_id",
                "sandbox"
            ]
        );
        assert_eq!(recs[0]["timestamp"], "2024-01-31T12:00:00.000000+0000");
        assert_eq!(
            recs[0]["sandbox"],
            json!({"api": "cape", "sha256": "ab".repeat(32), "filename": "inv.exe", "size": 1000, "task_id": 12,
                   "status": "reported", "score": 9.5, "family": "Emotet", "verdict": "malicious", "cached": false})
        );
        assert_eq!(recs[1]["event_type"], "alert");
        assert_eq!(recs[1]["alert"]["signature_id"], SANDBOX_ALERT_SID);
        assert_eq!(
            recs[1]["alert"]["signature"],
            "WEIR SANDBOX malicious verdict (Emotet) for inv.exe"
        );
        let clean = CachedVerdict {
            score: Some(1.0),
            family: None,
            verdict: "clean".into(),
            ..v
        };
        assert_eq!(
            records(&flow, sandbox_object("cape", &subject, &clean, true, None)).len(),
            1
        );
    }

    #[test]
    fn scores_classify() {
        assert_eq!(classify(Some(7.0), None, 7.0, 4.0), "malicious");
        assert_eq!(classify(Some(1.0), Some("Fam"), 7.0, 4.0), "malicious");
        assert_eq!(classify(Some(4.0), None, 7.0, 4.0), "suspicious");
        assert_eq!(classify(Some(3.9), None, 7.0, 4.0), "clean");
        assert_eq!(classify(None, None, 7.0, 4.0), "unknown");
    }
}
