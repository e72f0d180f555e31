//! Turning parsed [`Rule`]s into what the matcher runs: per-buffer inspection chains with
//! compiled regexes and variable slots, the rule's fast pattern, and its evaluation order.

use std::collections::HashMap;
use std::sync::Arc;

use weir_core::Direction;

use crate::rules::{
    Action, ByteExtract, ByteJump, ByteMath, ByteTest, Content, Detection, FastPattern, Flowbit,
    FlowbitCmd, Inspection, IsDataAt, Pcre, Protocol, Rule, Transform, Value,
};

/// Buffers that describe the packet itself rather than an application-layer transaction.
const PACKET_BUFFERS: &[&str] = &["pkt_data"];

/// `Detection::Other` keywords that do not change whether a rule matches in a passive sensor.
const NEUTRAL_KEYWORDS: &[&str] = &[
    "requires",
    "prefilter",
    "bypass",
    "tag",
    "config",
    "replace",
];

/// A number or a variable slot, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Num {
    Lit(i64),
    Var(usize),
}

/// One step of an inspection chain on one buffer.
#[derive(Debug)]
pub(crate) enum Step {
    Content(CContent),
    Pcre(CPcre),
    ByteTest(ByteTest, Num, Num),
    ByteJump(ByteJump, Num),
    ByteExtract(ByteExtract, usize),
    ByteMath(ByteMath, Num, usize),
    IsDataAt(IsDataAt, Num),
    Bsize(crate::rules::Cmp),
}

impl Step {
    /// Whether this step continues from the previous match's end.
    pub(crate) fn is_relative(&self) -> bool {
        match self {
            Step::Content(c) => c.distance.is_some() || c.within.is_some(),
            Step::Pcre(p) => p.relative,
            Step::ByteTest(t, _, _) => t.relative,
            Step::ByteJump(j, _) => j.relative,
            Step::ByteExtract(e, _) => e.relative,
            Step::ByteMath(m, _, _) => m.relative,
            Step::IsDataAt(d, _) => d.relative,
            Step::Bsize(_) => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct CContent {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<Num>,
    pub depth: Option<Num>,
    pub distance: Option<Num>,
    pub within: Option<Num>,
    pub startswith: bool,
    pub endswith: bool,
}

#[derive(Debug)]
pub(crate) struct CPcre {
    pub regex: pcre2::bytes::Regex,
    pub negated: bool,
    pub relative: bool,
}

/// The inspection chain of one buffer: relative steps chain within it.
#[derive(Debug)]
pub(crate) struct Chain {
    pub buffer: &'static str,
    pub transforms: Vec<Transform>,
    /// The rule's declaration of a multi-instance buffer this chain came from
    /// ([`crate::rules::Buffer::instance`]): each chain may match a different instance.
    pub instance: u32,
    pub steps: Vec<Step>,
    /// Whether the chain has a positive content or pcre (something that marks a position).
    pub anchors_position: bool,
}

/// Where a rule's fast pattern lives and what the prefilter looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FastPatternChoice {
    pub buffer: &'static str,
    pub bytes: Vec<u8>,
    pub nocase: bool,
}

/// What a rule inspects, which decides the entry point that evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleKind {
    /// Only addresses and ports (and bit-setting): Suricata evaluates these once per flow
    /// direction.
    IpOnly,
    /// Header conditions and possibly packet payload.
    Packet,
    /// Payload on TCP: the reassembled stream when there is one, else the packet.
    StreamPreferred,
    /// `tcp-stream`, `flow:only_stream`.
    StreamOnly,
    /// At least one application-layer buffer: inspected per transaction.
    Tx,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub rule: Rule,
    pub kind: RuleKind,
    pub chains: Vec<Chain>,
    pub fast_pattern: Option<FastPatternChoice>,
    /// `isset`/`isnotset` tests.
    pub bit_tests: Vec<Flowbit>,
    /// `set`/`unset`/`toggle`, applied when the rule matches.
    pub bit_actions: Vec<Flowbit>,
    /// Why this rule can never match in Weir (a keyword the matcher does not evaluate).
    pub unsupported: Option<String>,
    /// Flowbit names interned so tests compare cheaply.
    pub bit_names: Vec<Arc<str>>,
    /// For transaction rules: the side whose progress the rule waits for, from the buffers it
    /// reads (a request-only rule is a to-server rule, a rule reading any response buffer a
    /// to-client one, as Suricata sets a signature's direction). `None`: either side.
    pub tx_side: Option<Direction>,
}

/// Buffers only a response (or the server) fills.
fn is_response_buffer(name: &str) -> bool {
    matches!(
        name,
        "http.stat_code"
            | "http.stat_msg"
            | "http.response_line"
            | "http.response_body"
            | "http.response_header"
            | "http.server"
            | "http.location"
            | "dns.answer.name"
            | "dns.answers.rrname"
            | "tls.cert_subject"
            | "tls.cert_issuer"
            | "tls.cert_serial"
            | "tls.cert_fingerprint"
            | "tls.certs"
            | "tls.subjectaltname"
            | "ftp.reply"
            | "ftp.completion_code"
    )
}

/// Buffers only a request (or the client) fills.
fn is_request_buffer(name: &str) -> bool {
    matches!(
        name,
        "http.uri"
            | "http.uri.raw"
            | "http.method"
            | "http.request_line"
            | "http.request_body"
            | "http.request_header"
            | "http.host"
            | "http.host.raw"
            | "http.user_agent"
            | "http.cookie"
            | "http.referer"
            | "http.accept"
            | "http.accept_enc"
            | "http.accept_lang"
            | "http.connection"
            | "dns.query"
            | "dns.query.name"
            | "tls.sni"
            | "ja3.hash"
            | "ja3.string"
            | "ja4.hash"
            | "smtp.helo"
            | "smtp.mail_from"
            | "smtp.rcpt_to"
            | "ftp.command"
            | "ftp.command_data"
    )
}

/// The side a transaction rule waits for (see [`CompiledRule::tx_side`]).
fn tx_side_of(buffers: &[&str]) -> Option<Direction> {
    if buffers.iter().any(|b| is_response_buffer(b)) {
        Some(Direction::ToClient)
    } else if buffers.iter().any(|b| is_request_buffer(b)) {
        Some(Direction::ToServer)
    } else {
        None
    }
}

/// Suricata's buffer priority for automatic fast pattern selection: application-layer buffers
/// before the payload, `http.method` with the payload (Suricata docs, fast pattern explained).
fn buffer_priority(name: &str) -> u8 {
    match name {
        "pkt_data" | "http.method" => 3,
        _ => 2,
    }
}

/// Suricata's "pattern strength": a byte scores by its class the first time it is seen,
/// 1 each time after, so varied patterns win ties.
pub(crate) fn pattern_strength(pattern: &[u8]) -> u32 {
    let mut seen = [false; 256];
    let mut score = 0u32;
    for &b in pattern {
        let slot = &mut seen[usize::from(b)];
        if *slot {
            score += 1;
            continue;
        }
        *slot = true;
        score += if b.is_ascii_alphabetic() {
            3
        } else if b.is_ascii_graphic() || b == b' ' || b == 0x00 || b == 0x01 || b == 0xff {
            4
        } else {
            6
        };
    }
    score
}

/// Picks the rule's fast pattern as Suricata does: the explicit one; else among positive
/// contents (negated ones only when there are no positive ones) the highest-priority buffer,
/// then the longest, then the strongest, then the first in the rule.
pub(crate) fn choose_fast_pattern(rule: &Rule) -> Option<(usize, &Content)> {
    let contents: Vec<(usize, &crate::rules::Match, &Content)> = rule
        .matches
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match &m.inspection {
            Inspection::Content(c) => Some((i, m, c)),
            _ => None,
        })
        .collect();
    if let Some((i, _, c)) = contents.iter().find(|(_, _, c)| c.fast_pattern.is_some()) {
        return Some((*i, *c));
    }
    let any_positive = contents.iter().any(|(_, _, c)| !c.negated);
    let mut best: Option<(usize, &Content, (u8, usize, u32))> = None;
    for (i, m, c) in contents {
        if any_positive && c.negated {
            continue;
        }
        // Lower priority number is better; express "better" as larger for comparison.
        let score = (
            u8::MAX - buffer_priority(m.buffer.name),
            c.pattern.len(),
            pattern_strength(&c.pattern),
        );
        if best.as_ref().is_none_or(|(_, _, s)| score > *s) {
            best = Some((i, c, score));
        }
    }
    best.map(|(i, c, _)| (i, c))
}

fn num(value: &Value, vars: &HashMap<String, usize>) -> Result<Num, String> {
    match value {
        Value::Lit(n) => Ok(Num::Lit(*n)),
        Value::Var(name) => vars
            .get(name)
            .map(|slot| Num::Var(*slot))
            .ok_or_else(|| format!("variable `{name}` used before it is extracted")),
    }
}

fn build_regex(p: &Pcre) -> Result<pcre2::bytes::Regex, String> {
    let mut pattern = String::with_capacity(p.pattern.len() + 12);
    if p.ungreedy {
        pattern.push_str("(?U)");
    }
    if p.anchored {
        // The subject starts where the match must start (the buffer, or the previous match's
        // end for `R`), so anchoring at the subject start is Suricata's `A`.
        pattern.push_str("\\A(?:");
        pattern.push_str(&p.pattern);
        // In extended mode a trailing `#` comment would swallow the closing parenthesis.
        pattern.push_str(if p.extended { "\n)" } else { ")" });
    } else {
        pattern.push_str(&p.pattern);
    }
    pcre2::bytes::RegexBuilder::new()
        .caseless(p.caseless)
        .dotall(p.dotall)
        .multi_line(p.multiline)
        .extended(p.extended)
        .jit_if_available(true)
        .build(&pattern)
        .map_err(|e| format!("pcre: {e}"))
}

fn transform_supported(t: &Transform) -> bool {
    matches!(
        t,
        Transform::DotPrefix
            | Transform::StripWhitespace
            | Transform::CompressWhitespace
            | Transform::ToLowercase
            | Transform::ToUppercase
            | Transform::UrlDecode
            | Transform::HeaderLowercase
            | Transform::StripPseudoHeaders
            | Transform::Xor(_)
    )
}

fn is_packet_buffer(name: &str) -> bool {
    PACKET_BUFFERS.contains(&name)
}

impl CompiledRule {
    pub(crate) fn new(rule: Rule, interner: &mut HashMap<String, Arc<str>>) -> CompiledRule {
        let mut unsupported: Option<String> = None;
        let mut note = |why: String| {
            if unsupported.is_none() {
                unsupported = Some(why);
            }
        };
        let mut vars: HashMap<String, usize> = HashMap::new();
        let mut chains: Vec<Chain> = Vec::new();
        for m in &rule.matches {
            let chain_index = match chains
                .iter()
                .position(|c| {
                    c.buffer == m.buffer.name
                        && c.transforms == m.buffer.transforms
                        && c.instance == m.buffer.instance
                })
            {
                Some(i) => i,
                None => {
                    if let Some(t) = m.buffer.transforms.iter().find(|t| !transform_supported(t)) {
                        note(format!("transform {t:?}"));
                    }
                    chains.push(Chain {
                        buffer: m.buffer.name,
                        transforms: m.buffer.transforms.clone(),
                        instance: m.buffer.instance,
                        steps: Vec::new(),
                        anchors_position: false,
                    });
                    chains.len() - 1
                }
            };
            let step = match &m.inspection {
                Inspection::Content(c) => {
                    let resolve = |v: &Option<Value>| -> Result<Option<Num>, String> {
                        v.as_ref().map(|v| num(v, &vars)).transpose()
                    };
                    match (
                        resolve(&c.offset),
                        resolve(&c.depth),
                        resolve(&c.distance),
                        resolve(&c.within),
                    ) {
                        (Ok(offset), Ok(depth), Ok(distance), Ok(within)) => {
                            if c.rawbytes {
                                // Weir has no normalised-vs-raw payload split: rawbytes is the payload.
                            }
                            Some(Step::Content(CContent {
                                pattern: c.pattern.clone(),
                                negated: c.negated,
                                nocase: c.nocase,
                                offset,
                                depth,
                                distance,
                                within,
                                startswith: c.startswith,
                                endswith: c.endswith,
                            }))
                        }
                        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                            note(e);
                            None
                        }
                    }
                }
                Inspection::Pcre(p) => match build_regex(p) {
                    Ok(regex) => Some(Step::Pcre(CPcre {
                        regex,
                        negated: p.negated,
                        relative: p.relative,
                    })),
                    Err(e) => {
                        note(e);
                        None
                    }
                },
                Inspection::ByteTest(t) => {
                    if t.dce {
                        note("byte_test dce".into());
                    }
                    match (num(&t.value, &vars), num(&t.offset, &vars)) {
                        (Ok(v), Ok(o)) => Some(Step::ByteTest(t.clone(), v, o)),
                        (Err(e), _) | (_, Err(e)) => {
                            note(e);
                            None
                        }
                    }
                }
                Inspection::ByteJump(j) => {
                    if j.dce {
                        note("byte_jump dce".into());
                    }
                    match num(&j.offset, &vars) {
                        Ok(o) => Some(Step::ByteJump(j.clone(), o)),
                        Err(e) => {
                            note(e);
                            None
                        }
                    }
                }
                Inspection::ByteExtract(e) => {
                    if e.dce {
                        note("byte_extract dce".into());
                    }
                    let slot = vars.len();
                    vars.insert(e.name.clone(), slot);
                    Some(Step::ByteExtract(e.clone(), slot))
                }
                Inspection::ByteMath(bm) => {
                    if bm.dce {
                        note("byte_math dce".into());
                    }
                    match num(&bm.rvalue, &vars) {
                        Ok(r) => {
                            let slot = vars.len();
                            vars.insert(bm.result.clone(), slot);
                            Some(Step::ByteMath(bm.clone(), r, slot))
                        }
                        Err(e) => {
                            note(e);
                            None
                        }
                    }
                }
                Inspection::IsDataAt(d) => match num(&d.offset, &vars) {
                    Ok(o) => Some(Step::IsDataAt(d.clone(), o)),
                    Err(e) => {
                        note(e);
                        None
                    }
                },
                Inspection::Bsize(cmp) => Some(Step::Bsize(*cmp)),
                Inspection::Base64Decode(_) => {
                    note("base64_decode".into());
                    None
                }
            };
            if let Some(step) = step {
                let chain = &mut chains[chain_index];
                if matches!(&step, Step::Content(c) if !c.negated)
                    || matches!(&step, Step::Pcre(p) if !p.negated)
                {
                    chain.anchors_position = true;
                }
                chain.steps.push(step);
            }
        }
        let mut flow = None;
        let mut bit_tests = Vec::new();
        let mut bit_actions = Vec::new();
        let mut has_header_conditions = false;
        let mut packet_only = false;
        let mut urilen_buffer: Option<&'static str> = None;
        for d in &rule.conditions {
            match d {
                Detection::Flow(f) => {
                    flow = Some(*f);
                    if f.no_stream {
                        packet_only = true;
                    }
                    has_header_conditions = true;
                }
                Detection::Flowbit(b) => match b.cmd {
                    FlowbitCmd::IsSet | FlowbitCmd::IsNotSet => {
                        bit_tests.push(b.clone());
                        has_header_conditions = true;
                    }
                    _ => bit_actions.push(b.clone()),
                },
                Detection::Dsize(_) => {
                    packet_only = true;
                    has_header_conditions = true;
                }
                Detection::Urilen { raw, .. } => {
                    urilen_buffer = Some(if *raw { "http.uri.raw" } else { "http.uri" });
                }
                Detection::AppLayerProtocol { .. }
                | Detection::Ttl(_)
                | Detection::Itype(_)
                | Detection::Icode(_)
                | Detection::IcmpId(_)
                | Detection::IcmpSeq(_)
                | Detection::IpId(_)
                | Detection::IpProto { .. }
                | Detection::Ack(_)
                | Detection::Seq(_)
                | Detection::Window { .. }
                | Detection::Flags(_) => has_header_conditions = true,
                Detection::Filestore { .. } => {}
                Detection::Other(o) if NEUTRAL_KEYWORDS.contains(&o.keyword) => {}
                Detection::Other(o) if o.keyword == "sameip" => has_header_conditions = true,
                Detection::Other(o) => note(o.keyword.to_string()),
                Detection::Xbit { .. } => note("xbits".into()),
                Detection::Flowint { .. } => note("flowint".into()),
                Detection::StreamSize { .. } => note("stream_size".into()),
                Detection::Filesize(_) => note("filesize".into()),
                Detection::FileHash(_) => note("file hash list".into()),
            }
        }
        let has_tx_buffer =
            chains.iter().any(|c| !is_packet_buffer(c.buffer)) || urilen_buffer.is_some();
        let has_payload = chains.iter().any(|c| c.buffer == "pkt_data");
        let any_port = |p: &crate::rules::PortExpr| *p == crate::rules::PortExpr::Any;
        let kind = if has_tx_buffer {
            RuleKind::Tx
        } else if has_payload {
            match rule.protocol {
                Protocol::TcpStream => RuleKind::StreamOnly,
                _ if flow.is_some_and(|f| f.only_stream) => RuleKind::StreamOnly,
                Protocol::Tcp | Protocol::App(_) if !packet_only => RuleKind::StreamPreferred,
                _ => RuleKind::Packet,
            }
        } else if !has_header_conditions
            && any_port(&rule.src_port)
            && any_port(&rule.dst_port)
            && !matches!(rule.protocol, Protocol::App(_))
        {
            RuleKind::IpOnly
        } else {
            RuleKind::Packet
        };
        if kind == RuleKind::Tx && chains.iter().any(|c| c.buffer == "pkt_data") {
            // Payload and transaction buffers in one rule need both at once; Weir's tx view
            // carries a `pkt_data` buffer only when the caller supplies one.
        }
        let fast_pattern = choose_fast_pattern(&rule).and_then(|(index, c)| {
            let m = &rule.matches[index];
            // A negated fast pattern cannot prefilter (the rule must run when it is absent), and
            // a transformed buffer would need the transformed bytes scanned.
            if c.negated || !m.buffer.transforms.is_empty() {
                return None;
            }
            let bytes = match c.fast_pattern {
                Some(FastPattern::Slice { offset, length }) => {
                    let start = usize::from(offset);
                    let end = start + usize::from(length);
                    c.pattern.get(start..end)?.to_vec()
                }
                _ => c.pattern.clone(),
            };
            if bytes.is_empty() {
                return None;
            }
            Some(FastPatternChoice {
                buffer: m.buffer.name,
                bytes,
                nocase: c.nocase,
            })
        });
        let mut bit_names = Vec::new();
        for b in bit_tests.iter().chain(bit_actions.iter()) {
            for name in &b.names {
                let interned = interner
                    .entry(name.clone())
                    .or_insert_with(|| Arc::from(name.as_str()))
                    .clone();
                bit_names.push(interned);
            }
        }
        if let Some(buffer) = urilen_buffer
            && !chains
                .iter()
                .any(|c| c.buffer == buffer && c.transforms.is_empty())
        {
            // urilen needs the buffer present even without a content on it.
            chains.push(Chain {
                buffer,
                transforms: Vec::new(),
                instance: 0,
                steps: Vec::new(),
                anchors_position: false,
            });
        }
        let tx_side = tx_side_of(&rule.buffers());
        CompiledRule {
            rule,
            kind,
            chains,
            fast_pattern,
            bit_tests,
            bit_actions,
            unsupported,
            bit_names,
            tx_side,
        }
    }

    /// Suricata's signature ordering key: action (pass first), then flowbit role (rules that
    /// only set bits before rules that read them), then priority.
    pub(crate) fn order_key(&self) -> (u8, u8, u8) {
        let action = match self.rule.action {
            Action::Pass => 0,
            Action::Drop => 1,
            Action::Reject | Action::RejectSrc | Action::RejectDst | Action::RejectBoth => 2,
            Action::Alert => 3,
        };
        let sets = !self.bit_actions.is_empty();
        let reads = !self.bit_tests.is_empty();
        let bits = match (sets, reads) {
            (true, false) => 0,
            (true, true) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        (action, bits, self.rule.priority)
    }
}
