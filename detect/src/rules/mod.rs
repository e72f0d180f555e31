//! The Suricata 8 rule language: parsing rule text into a typed [`Rule`], variables,
//! `classification.config`, and loading rule files into a [`RuleSetReport`].
//!
//! Matching is not here; a [`Rule`] carries everything a matcher needs, with its payload
//! inspections in rule order ([`Rule::matches`]) so relative matches chain as in Suricata.

mod classification;
mod content;
mod error;
mod header;
mod lexer;
mod load;
mod options;
mod vars;

pub use classification::{
    ClassType, Classification, ClassificationError, WEIR_DEFAULT_CLASSIFICATION,
};
pub use content::parse_content_bytes;
pub use error::RuleError;
pub use header::{Action, AddressExpr, IpBlock, PortExpr, Protocol, RuleDirection, app_protocol};
pub use lexer::{MAX_OPTIONS, MAX_RULE_LEN};
pub use load::{
    DuplicateSid, FileError, KeywordUse, Location, MAX_RULE_FILE_BYTES, RejectReason, Rejection,
    RuleSetReport, Warning, load_rule_files, load_rules_from_str,
};
pub use options::{
    Base64Decode, Buffer, ByteExtract, ByteJump, ByteMath, ByteMathOp, ByteTest, ByteTestOp, Cmp,
    Content, Detection, DetectionFilter, Endian, FastPattern, FileHashKind, FileHashList,
    FlowOptions, Flowbit, FlowbitCmd, Inspection, IsDataAt, MULTI_INSTANCE_BUFFERS, Match, NumBase,
    OtherOption, Pcre, Reference, Target, TcpFlags, Threshold, ThresholdKind, Track, Transform,
    Value, XbitTrack,
};
pub use vars::{MAX_VAR_EXPANSION, ResolvedVars, Vars};

use std::path::Path;

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub protocol: Protocol,
    pub src_addr: AddressExpr,
    pub src_port: PortExpr,
    pub direction: RuleDirection,
    pub dst_addr: AddressExpr,
    pub dst_port: PortExpr,
    pub sid: u32,
    /// 1 unless the rule says otherwise.
    pub gid: u32,
    /// 0 unless the rule says otherwise.
    pub rev: u32,
    /// `msg`, escapes undone; empty when absent (Suricata allows that).
    pub msg: String,
    /// Canonical (configured) spelling of the class type, when the rule names one.
    pub classtype: Option<String>,
    /// From `priority`, else the class type's, else 3 (Suricata's default).
    pub priority: u8,
    pub references: Vec<Reference>,
    /// `metadata` entries as `(key, value)` pairs, in rule order.
    pub metadata: Vec<(String, String)>,
    pub target: Option<Target>,
    /// Payload inspections in rule order, each naming the buffer it runs on.
    pub matches: Vec<Match>,
    /// Everything else that decides a match (flow, flowbits, flags, ttl, ...).
    pub conditions: Vec<Detection>,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<DetectionFilter>,
    /// `noalert`, or `flowbits:noalert`: match and set bits, but never log.
    pub noalert: bool,
}

impl Rule {
    /// This rule's payload inspections on one buffer, in rule order: the sequence in which
    /// relative matches (`distance`, `within`, `R`, `relative`) chain.
    pub fn matches_in<'a>(&'a self, buffer: &'a str) -> impl Iterator<Item = &'a Match> + 'a {
        self.matches.iter().filter(move |m| m.buffer.name == buffer)
    }

    /// The buffers this rule inspects, each once, in order of first use.
    pub fn buffers(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for m in &self.matches {
            if !names.contains(&m.buffer.name) {
                names.push(m.buffer.name);
            }
        }
        names
    }
}

/// Parses one rule (continuation lines already joined). `base_dir` is where relative list
/// files (`filemd5:list.txt`) are looked up: the rule file's directory.
pub fn parse_rule(
    text: &str,
    vars: &ResolvedVars,
    classification: &Classification,
    base_dir: Option<&Path>,
) -> Result<(Rule, Vec<Warning>), RuleError> {
    options::parse_rule(text, vars, classification, base_dir)
}

#[cfg(test)]
mod tests;
