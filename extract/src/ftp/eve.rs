//! The EVE `ftp` and `ftp_data` objects, as Suricata 8 writes them.

use serde_json::{Map, Value};

use super::control::{FtpTx, MASKED_PASSWORD};
use super::expect::Expectation;
use crate::dns::escape_bytes;

/// The `ftp` object of a transaction: `command`, `command_data`, `command_truncated`,
/// `completion_code` (one per reply line that starts with a code), `reply` (each line's text
/// after the code), `dynamic_port`, `mode` (PORT/EPRT only, as Suricata), `reply_received`,
/// `reply_truncated`.
pub(super) fn ftp_object(tx: &FtpTx) -> Value {
    let mut m = Map::new();
    if let Some(command) = &tx.command {
        m.insert("command".into(), escape_bytes(command).into());
        if !tx.command_data.is_empty() {
            let data = if tx.mask_data {
                MASKED_PASSWORD.to_string()
            } else {
                escape_bytes(&tx.command_data)
            };
            m.insert("command_data".into(), data.into());
            m.insert("command_truncated".into(), tx.command_truncated.into());
        }
    }
    let mut codes = Vec::new();
    let mut texts = Vec::new();
    for line in &tx.replies {
        let coded = line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit);
        if coded {
            codes.push(Value::from(escape_bytes(&line[..3])));
        }
        let skip = if coded { 4 } else { 0 };
        // Suricata writes no text for a bare "226" line.
        if line.len() >= skip {
            texts.push(Value::from(escape_bytes(&line[skip..])));
        }
    }
    if !codes.is_empty() {
        m.insert("completion_code".into(), codes.into());
    }
    if !texts.is_empty() {
        m.insert("reply".into(), texts.into());
    }
    if let Some(port) = tx.dynamic_port {
        m.insert("dynamic_port".into(), port.into());
    }
    if let Some(active) = tx.active {
        m.insert(
            "mode".into(),
            if active { "active" } else { "passive" }.into(),
        );
    }
    m.insert(
        "reply_received".into(),
        if tx.done { "yes" } else { "no" }.into(),
    );
    m.insert("reply_truncated".into(), tx.reply_truncated.into());
    Value::Object(m)
}

/// The `ftp_data` object: the file name and the command that moved it.
pub(super) fn ftp_data_object(exp: &Expectation) -> Value {
    let mut m = Map::new();
    if let Some(t) = &exp.transfer {
        if !t.argument.is_empty() {
            m.insert("filename".into(), escape_bytes(&t.argument).into());
        }
        m.insert("command".into(), t.command.name().into());
    }
    Value::Object(m)
}
