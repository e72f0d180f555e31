//! The Suricata rule parser: one rule from the input, a rule file from the input (continuation
//! lines, comments, duplicates), and a rule built around a `msg` taken from the input.
//!
//! Invariants: a parsed rule has a sid; writing a parsed rule's msg and sid/gid/rev back into
//! rule syntax (escaping as Suricata does) parses to the same values; a file's report accounts
//! for each rule once (loaded or rejected) and never for more rules than the file has lines.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weir_detect::rules::{load_rules_from_str, parse_rule, Classification, ResolvedVars, Rule, Vars};

/// `msg` in rule syntax: Suricata's escapes for the characters that end or split an option.
fn escape(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for c in msg.chars() {
        if matches!(c, '\\' | '"' | ';' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn round_trip(rule: &Rule, vars: &ResolvedVars, classification: &Classification) {
    let text = format!(
        "alert ip any any -> any any (msg:\"{}\"; sid:{}; gid:{}; rev:{};)",
        escape(&rule.msg),
        rule.sid,
        rule.gid,
        rule.rev
    );
    match parse_rule(&text, vars, classification, None) {
        Ok((again, _)) => {
            assert_eq!(again.msg, rule.msg, "msg round trip through {text:?}");
            assert_eq!((again.sid, again.gid, again.rev), (rule.sid, rule.gid, rule.rev));
        }
        Err(e) => panic!("the re-written rule {text:?} does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let vars = Vars::default();
    let resolved = vars.resolve();
    let classification = Classification::default();
    match mode % 3 {
        0 => {
            if let Ok((rule, _warnings)) = parse_rule(text, &resolved, &classification, None) {
                assert_ne!(rule.sid, 0, "a rule without a sid parsed");
                round_trip(&rule, &resolved, &classification);
            }
        }
        1 => {
            let report = load_rules_from_str(text, Path::new("fuzz.rules"), &vars, &classification);
            let lines = text.lines().count();
            assert_eq!(report.rules.len(), report.locations.len());
            assert!(
                report.rules.len() + report.rejected.len() <= lines,
                "{} loaded + {} rejected from {lines} lines",
                report.rules.len(),
                report.rejected.len()
            );
            for rule in &report.rules {
                round_trip(rule, &resolved, &classification);
            }
        }
        _ => {
            // Messages are one line of text in a rule file; control characters other than tab
            // cannot be written there.
            if text.chars().any(|c| c.is_control() && c != '\t') {
                return;
            }
            let line = format!("alert tcp any any -> any any (msg:\"{}\"; sid:7;)", escape(text));
            match parse_rule(&line, &resolved, &classification, None) {
                Ok((rule, _)) => assert_eq!(rule.msg, text, "msg round trip through {line:?}"),
                Err(e) => panic!("rule with an escaped msg does not parse: {line:?}: {e}"),
            }
        }
    }
});
