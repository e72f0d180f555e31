//! The parts of an EVE record every stage shares: the common header of a flow's records.
//! Each protocol module builds its own object (`http`, `dns`, ...) and puts it under its key.

use serde_json::{Map, Value};

use crate::flow::{AppProto, FlowKey, IpProto};
use crate::time::Timestamp;

/// A record under construction: a JSON object whose key order is the order fields are added.
pub type Record = Map<String, Value>;

/// What every record of one flow shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowHeader {
    pub flow_id: u64,
    /// Oriented as the record wants it: client to server for flow and transaction records, packet
    /// direction for packet alerts.
    pub key: FlowKey,
    pub app_proto: Option<AppProto>,
}

/// Starts a record: `timestamp`, then `flow_id`, `event_type`, `vlan`, addresses and ports,
/// `proto`, in Suricata's order.
pub fn record(ts: Timestamp, event_type: &str, flow: Option<&FlowHeader>) -> Record {
    let mut r = Record::new();
    r.insert("timestamp".into(), Value::String(ts.eve()));
    if let Some(f) = flow {
        r.insert("flow_id".into(), Value::from(f.flow_id));
    }
    r.insert("event_type".into(), Value::String(event_type.into()));
    if let Some(f) = flow {
        put_addresses(&mut r, &f.key);
    }
    r
}

/// Writes `vlan`, `src_ip`, `src_port`, `dest_ip`, `dest_port`, `proto`, `ip_v` (and for ICMP
/// `icmp_type`/`icmp_code`) for a key.
pub fn put_addresses(r: &mut Record, key: &FlowKey) {
    if !key.vlans.is_empty() {
        r.insert("vlan".into(), Value::from(key.vlans.as_slice().to_vec()));
    }
    r.insert("src_ip".into(), Value::String(key.src_ip.to_string()));
    let icmp = matches!(key.proto, IpProto::ICMP | IpProto::ICMPV6);
    if key.proto.has_ports() {
        r.insert("src_port".into(), Value::from(key.src_port));
    }
    r.insert("dest_ip".into(), Value::String(key.dst_ip.to_string()));
    if key.proto.has_ports() {
        r.insert("dest_port".into(), Value::from(key.dst_port));
    }
    r.insert("proto".into(), Value::String(key.proto.eve_name().into_owned()));
    // Suricata 8 writes the IP version of every record with addresses.
    r.insert("ip_v".into(), Value::from(if key.src_ip.is_ipv4() { 4 } else { 6 }));
    if icmp {
        r.insert("icmp_type".into(), Value::from(key.src_port));
        r.insert("icmp_code".into(), Value::from(key.dst_port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Vlans;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn header_fields_come_in_suricata_order() {
        let mut vlans = Vlans::default();
        vlans.push(6);
        let key = FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 1234,
            dst_port: 80,
            proto: IpProto::TCP,
            vlans,
            tunnel_depth: 0,
        };
        let hdr = FlowHeader { flow_id: 7, key, app_proto: None };
        let r = record(Timestamp::ZERO, "flow", Some(&hdr));
        let keys: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["timestamp", "flow_id", "event_type", "vlan", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "ip_v"]
        );
        assert_eq!(r["vlan"], serde_json::json!([6]));
    }
}
