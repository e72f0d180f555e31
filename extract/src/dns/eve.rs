//! The EVE `dns` record, in Suricata 8's version 3 layout: one record per message, with the
//! header flags, `queries`, `answers` (detailed), `grouped` answers, `authorities` and
//! `additionals`.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::wire::{Message, Name, RData, Record, RrType};

/// Renders name bytes as EVE does: printable ASCII as is, anything else as `\xNN`; the empty
/// (root) name as `<root>`.
pub fn name_text(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "<root>".to_string();
    }
    escape_bytes(bytes)
}

/// Printable ASCII as is, other bytes as `\xNN`, so hostile bytes never reach a log raw.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let printable = |b: u8| b.is_ascii_graphic() || b == b' ';
    if bytes.iter().all(|&b| printable(b)) {
        // All ASCII, so this cannot fail; the fallback keeps the no-panic rule visible.
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    let mut s = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        if printable(b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

/// IPv4 dotted quad; IPv6 as eight groups of four hex digits, uncompressed, as Suricata writes it.
fn addr_text(addr: &[u8]) -> String {
    let mut s = String::with_capacity(39);
    if let [a, b, c, d] = addr {
        let _ = write!(s, "{a}.{b}.{c}.{d}");
        return s;
    }
    for (i, pair) in addr.chunks(2).enumerate() {
        if i > 0 {
            s.push(':');
        }
        for b in pair {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

fn name_value(name: &Name) -> Value {
    Value::String(name_text(&name.bytes))
}

fn soa_value(soa: &super::wire::Soa) -> Value {
    let mut o = Map::new();
    o.insert("mname".into(), name_value(&soa.mname));
    if soa.mname.truncated {
        o.insert("mname_truncated".into(), Value::Bool(true));
    }
    o.insert("rname".into(), name_value(&soa.rname));
    if soa.rname.truncated {
        o.insert("rname_truncated".into(), Value::Bool(true));
    }
    o.insert("serial".into(), json!(soa.serial));
    o.insert("refresh".into(), json!(soa.refresh));
    o.insert("retry".into(), json!(soa.retry));
    o.insert("expire".into(), json!(soa.expire));
    o.insert("minimum".into(), json!(soa.minimum));
    Value::Object(o)
}

fn srv_value(srv: &super::wire::Srv) -> Value {
    json!({
        "priority": srv.priority,
        "weight": srv.weight,
        "port": srv.port,
        "name": name_text(&srv.target.bytes),
    })
}

/// The detailed entries of one record: one per TXT string, else exactly one.
fn record_details(record: &Record) -> Vec<Value> {
    let base = || {
        let mut o = Map::new();
        o.insert("rrname".into(), name_value(&record.name));
        if record.name.truncated {
            o.insert("rrname_truncated".into(), Value::Bool(true));
        }
        o.insert("rrtype".into(), Value::String(record.rrtype.eve()));
        o.insert("ttl".into(), json!(record.ttl));
        o
    };
    let with_name = |name: &Name| {
        let mut o = base();
        o.insert("rdata".into(), name_value(name));
        if name.truncated {
            o.insert("rdata_truncated".into(), Value::Bool(true));
        }
        vec![Value::Object(o)]
    };
    match &record.data {
        RData::A(a) => {
            let mut o = base();
            o.insert("rdata".into(), Value::String(addr_text(a)));
            vec![Value::Object(o)]
        }
        RData::Aaaa(a) => {
            let mut o = base();
            o.insert("rdata".into(), Value::String(addr_text(a)));
            vec![Value::Object(o)]
        }
        RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => with_name(n),
        RData::Mx { exchange, .. } => with_name(exchange),
        RData::Txt(strings) => strings
            .iter()
            .map(|s| {
                let mut o = base();
                o.insert("rdata".into(), Value::String(escape_bytes(s)));
                Value::Object(o)
            })
            .collect(),
        RData::Soa(soa) => {
            let mut o = base();
            o.insert("soa".into(), soa_value(soa));
            vec![Value::Object(o)]
        }
        RData::Srv(srv) => {
            let mut o = base();
            o.insert("srv".into(), srv_value(srv));
            vec![Value::Object(o)]
        }
        RData::Opt(options) => {
            let mut o = base();
            let opts = options
                .iter()
                .map(|opt| json!({"code": opt.code, "data": weir_core::hex(&opt.data)}))
                .collect();
            o.insert("opt".into(), Value::Array(opts));
            vec![Value::Object(o)]
        }
        RData::Other { .. } => vec![Value::Object(base())],
    }
}

/// `grouped`: answer data by record type, in order of first appearance.
fn grouped(answers: &[Record]) -> Map<String, Value> {
    let mut groups: Map<String, Value> = Map::new();
    let mut push = |rrtype: RrType, v: Value| {
        if let Value::Array(list) = groups.entry(rrtype.eve()).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(v);
        }
    };
    for record in answers {
        match &record.data {
            RData::A(a) => push(record.rrtype, Value::String(addr_text(a))),
            RData::Aaaa(a) => push(record.rrtype, Value::String(addr_text(a))),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => push(record.rrtype, name_value(n)),
            RData::Mx { exchange, .. } => push(record.rrtype, name_value(exchange)),
            RData::Txt(strings) => {
                for s in strings {
                    push(record.rrtype, Value::String(escape_bytes(s)));
                }
            }
            RData::Soa(soa) => push(record.rrtype, soa_value(soa)),
            RData::Srv(srv) => push(record.rrtype, srv_value(srv)),
            RData::Opt(_) | RData::Other { .. } => {}
        }
    }
    groups
}

/// The `dns` object of the EVE record for one message, which is transaction `tx_id`.
pub fn dns_object(message: &Message, tx_id: u64) -> Map<String, Value> {
    let h = &message.header;
    let mut o = Map::new();
    o.insert("version".into(), json!(3));
    let kind = if h.is_response() { "response" } else { "request" };
    o.insert("type".into(), Value::String(kind.into()));
    o.insert("tx_id".into(), json!(tx_id));
    o.insert("id".into(), json!(h.id));
    o.insert("flags".into(), Value::String(format!("{:x}", h.flags)));
    for (bit, key) in [(0x8000, "qr"), (0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"), (0x0080, "ra"), (0x0040, "z")] {
        if h.flags & bit != 0 {
            o.insert(key.into(), Value::Bool(true));
        }
    }
    o.insert("opcode".into(), json!(h.opcode()));
    o.insert("rcode".into(), Value::String(super::wire::rcode_eve(h.rcode())));

    if !message.questions.is_empty() {
        let queries = message
            .questions
            .iter()
            .map(|q| {
                let mut e = Map::new();
                e.insert("rrname".into(), name_value(&q.name));
                e.insert("rrtype".into(), Value::String(q.rrtype.eve()));
                if q.name.truncated {
                    e.insert("rrname_truncated".into(), Value::Bool(true));
                }
                Value::Object(e)
            })
            .collect();
        o.insert("queries".into(), Value::Array(queries));
    }
    if !message.answers.is_empty() {
        let answers = message.answers.iter().flat_map(record_details).collect();
        o.insert("answers".into(), Value::Array(answers));
        o.insert("grouped".into(), Value::Object(grouped(&message.answers)));
    }
    if !message.authorities.is_empty() {
        let list = message.authorities.iter().flat_map(record_details).collect();
        o.insert("authorities".into(), Value::Array(list));
    }
    // An OPT record without options only says "I speak EDNS": Suricata leaves it out.
    let additionals: Vec<Value> = message
        .additionals
        .iter()
        .filter(|r| !matches!(&r.data, RData::Opt(options) if options.is_empty()))
        .flat_map(record_details)
        .collect();
    if !additionals.is_empty() {
        o.insert("additionals".into(), Value::Array(additionals));
    }
    o
}
