//! The EVE `flow` record, as Suricata writes it when a flow ends.

use serde_json::{Value, json};
use weir_core::eve::{self, FlowHeader, Record};

use crate::table::{EndReason, Flow};

/// The `flow` record of an ended flow. `tcp` is the `tcp` object (flags, state) when the worker
/// tracked a TCP session. The record's timestamp is the flow's start, as in Suricata.
pub fn flow_record<S>(flow: &Flow<S>, reason: EndReason, tcp: Option<Value>) -> Record {
    let header = FlowHeader { flow_id: flow.id, key: flow.key, app_proto: flow.app_proto };
    let mut r = eve::record(flow.start, "flow", Some(&header));
    if let Some(app) = flow.app_proto {
        r.insert("app_proto".into(), Value::from(app.eve_name()));
    }
    r.insert(
        "flow".into(),
        json!({
            "pkts_toserver": flow.pkts[0],
            "pkts_toclient": flow.pkts[1],
            "bytes_toserver": flow.bytes[0],
            "bytes_toclient": flow.bytes[1],
            "start": flow.start.eve(),
            "end": flow.last_seen.eve(),
            "age": flow.last_seen.secs().saturating_sub(flow.start.secs()),
            "state": flow.lifecycle.eve(),
            "reason": reason.eve(),
            "alerted": flow.alerted,
        }),
    );
    if let Some(tcp) = tcp {
        r.insert("tcp".into(), tcp);
    }
    r
}
