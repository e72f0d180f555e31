//! Rule options: the typed values, and the keyword-by-keyword parser that builds a [`Rule`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use weir_core::Direction;

use super::classification::Classification;
use super::content::parse_content_bytes;
use super::header::{Action, Protocol, RuleDirection, app_protocol, parse_address, parse_port};
use super::lexer::{RawOption, split_rule, strip_outer_quotes, strip_quotes, truncate, unquote};
use super::load::Warning;
use super::vars::ResolvedVars;
use super::{Rule, RuleError};

/// Most entries one `filemd5`/`filesha1`/`filesha256` list file may hold.
pub const MAX_HASH_LIST_ENTRIES: usize = 1_000_000;

/// Largest `filemd5`/`filesha1`/`filesha256` list file read.
pub const MAX_HASH_LIST_BYTES: u64 = 128 * 1024 * 1024;

/// Most variables (`byte_extract`, `byte_math` results) one rule may define.
pub const MAX_RULE_VARS: usize = 64;

/// A number given literally or by the name of a `byte_extract`/`byte_math` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Lit(i64),
    Var(String),
}

/// The inspection buffer a match runs on. `pkt_data` is the packet or stream payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffer {
    /// Canonical Suricata 8 name (`http.uri`, `file.data`, `dns.query`, `pkt_data`, ...).
    pub name: &'static str,
    /// Transforms applied to the buffer before matching, in rule order.
    pub transforms: Vec<Transform>,
    /// Which declaration of a multi-instance buffer (one per file, query, header: see
    /// [`MULTI_INSTANCE_BUFFERS`]) the match belongs to. As in Suricata, all matches of one
    /// declaration must hold in one instance, while each new declaration may match another one:
    /// `file.data; content:"a"; file.data; content:"b";` matches "a" and "b" in two files.
    /// 0 for buffers a transaction has once, and for matches not under a sticky keyword.
    pub instance: u32,
}

/// Buffers a transaction may hold several of, each inspected on its own.
pub const MULTI_INSTANCE_BUFFERS: &[&str] = &[
    "file.data",
    "file.name",
    "file.magic",
    "dns.query",
    "dns.queries.rrname",
    "dns.answer.name",
    "dns.answers.rrname",
    "http.request_header",
    "http.response_header",
    "smtp.rcpt_to",
    "email.url",
];

impl Buffer {
    pub const PAYLOAD: &'static str = "pkt_data";

    fn payload() -> Buffer {
        Buffer::named(Buffer::PAYLOAD)
    }

    fn named(name: &'static str) -> Buffer {
        Buffer {
            name,
            transforms: Vec::new(),
            instance: 0,
        }
    }

    pub fn is_payload(&self) -> bool {
        self.name == Buffer::PAYLOAD
    }
}

/// Suricata's buffer transforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    DotPrefix,
    StripWhitespace,
    CompressWhitespace,
    ToLowercase,
    ToUppercase,
    ToMd5,
    ToSha1,
    ToSha256,
    UrlDecode,
    HeaderLowercase,
    StripPseudoHeaders,
    Xor(Vec<u8>),
    /// `from_base64` with its options text, `pcrexform` with its regex, and any other transform
    /// kept by name with its argument.
    Other {
        name: &'static str,
        argument: Option<String>,
    },
}

/// One payload inspection and the buffer it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub buffer: Buffer,
    pub inspection: Inspection,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inspection {
    Content(Content),
    Pcre(Pcre),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    ByteMath(ByteMath),
    IsDataAt(IsDataAt),
    /// `bsize`: the buffer's length.
    Bsize(Cmp),
    Base64Decode(Base64Decode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastPattern {
    /// `fast_pattern`
    Yes,
    /// `fast_pattern:only` (Suricata 7+ treats it as plain `fast_pattern`).
    Only,
    /// `fast_pattern:offset,length`: only this slice of the pattern goes to the prefilter.
    Slice { offset: u16, length: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<Value>,
    pub depth: Option<Value>,
    /// Relative to the end of the previous match in the same buffer.
    pub distance: Option<Value>,
    pub within: Option<Value>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: Option<FastPattern>,
    pub rawbytes: bool,
}

impl Content {
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pcre {
    /// The regex between the slashes, as PCRE2 compiles it.
    pub pattern: String,
    pub negated: bool,
    /// `R`: starts at the end of the previous match in the buffer.
    pub relative: bool,
    pub caseless: bool,
    pub dotall: bool,
    pub multiline: bool,
    pub extended: bool,
    /// `A`
    pub anchored: bool,
    /// `E`
    pub dollar_endonly: bool,
    /// `G`
    pub ungreedy: bool,
    /// `O`: no match-limit override.
    pub no_match_limit: bool,
    /// `B`
    pub rawbytes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Big,
    Little,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumBase {
    Hex,
    Dec,
    Oct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteTestOp {
    Lt,
    Gt,
    Eq,
    Le,
    Ge,
    /// `&`: any of the value's bits set.
    And,
    /// `^`: bitwise xor non-zero.
    Xor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteTest {
    pub bytes: u8,
    pub negated: bool,
    pub op: ByteTestOp,
    pub value: Value,
    pub offset: Value,
    pub relative: bool,
    pub endian: Endian,
    /// Bytes are ASCII digits in this base (`string,dec`).
    pub string: Option<NumBase>,
    pub dce: bool,
    pub bitmask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteJump {
    pub bytes: u8,
    pub offset: Value,
    pub relative: bool,
    pub multiplier: u32,
    pub endian: Endian,
    pub string: Option<NumBase>,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: i32,
    pub dce: bool,
    pub bitmask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteExtract {
    pub bytes: u8,
    pub offset: i32,
    pub name: String,
    pub relative: bool,
    pub multiplier: u32,
    pub endian: Endian,
    pub string: Option<NumBase>,
    pub align: u8,
    pub dce: bool,
    pub bitmask: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteMathOp {
    Add,
    Sub,
    Mul,
    Div,
    Shl,
    Shr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteMath {
    pub bytes: u8,
    pub offset: i32,
    pub op: ByteMathOp,
    pub rvalue: Value,
    pub result: String,
    pub relative: bool,
    pub endian: Endian,
    pub string: Option<NumBase>,
    pub dce: bool,
    pub bitmask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsDataAt {
    pub offset: Value,
    pub negated: bool,
    pub relative: bool,
    pub rawbytes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Base64Decode {
    pub bytes: Option<u32>,
    pub offset: Option<u32>,
    pub relative: bool,
}

/// A numeric comparison as Suricata's integer keywords write it: `N`, `!N`, `<N`, `<=N`,
/// `>N`, `>=N`, and the exclusive ranges `N<>M` / `N-M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// Strictly between the two.
    Between(u64, u64),
    NotBetween(u64, u64),
}

impl Cmp {
    pub fn matches(self, v: u64) -> bool {
        match self {
            Cmp::Eq(a) => v == a,
            Cmp::Ne(a) => v != a,
            Cmp::Lt(a) => v < a,
            Cmp::Le(a) => v <= a,
            Cmp::Gt(a) => v > a,
            Cmp::Ge(a) => v >= a,
            Cmp::Between(a, b) => a < v && v < b,
            Cmp::NotBetween(a, b) => !(a < v && v < b),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowOptions {
    pub direction: Option<Direction>,
    pub established: bool,
    pub not_established: bool,
    pub stateless: bool,
    pub only_stream: bool,
    pub no_stream: bool,
    pub only_frag: bool,
    pub no_frag: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowbitCmd {
    Set,
    IsSet,
    IsNotSet,
    Unset,
    Toggle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flowbit {
    pub cmd: FlowbitCmd,
    /// One name, or several joined by `|` (any of them) or `&` (all of them).
    pub names: Vec<String>,
    /// True for `a|b`: any of the names satisfies the test.
    pub any_of: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XbitTrack {
    IpSrc,
    IpDst,
    IpPair,
    Tx,
}

/// TCP flags test: `[!*+]FLAGS[,IGNORED]`. Bits use the TCP header's layout (FIN = 0x01 ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlags {
    pub flags: u8,
    /// `+`: these and possibly others; `*`: any of these; `!`: none of these; none: exactly.
    pub modifier: Option<char>,
    /// Bits left out of the comparison (after the comma).
    pub ignored: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
    ByFlow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
    /// `backoff` only.
    pub multiplier: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionFilter {
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
    /// `unique_on src_port|dst_port`.
    pub unique_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Source,
    Destination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHashKind {
    Md5,
    Sha1,
    Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashList {
    pub kind: FileHashKind,
    pub negated: bool,
    pub path: PathBuf,
    /// Sorted, for binary search.
    pub hashes: Vec<Vec<u8>>,
}

/// A keyword Weir recognises and keeps as written, for a later matcher to interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherOption {
    pub keyword: &'static str,
    pub value: Option<String>,
}

/// A non-payload condition of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    Flow(FlowOptions),
    Flowbit(Flowbit),
    Xbit {
        cmd: FlowbitCmd,
        name: String,
        track: XbitTrack,
        expire: Option<u32>,
    },
    Flowint {
        name: String,
        op: String,
        value: Option<String>,
    },
    AppLayerProtocol {
        name: &'static str,
        negated: bool,
    },
    Dsize(Cmp),
    Urilen {
        cmp: Cmp,
        raw: bool,
    },
    Ttl(Cmp),
    Itype(Cmp),
    Icode(Cmp),
    IcmpId(u16),
    IcmpSeq(u16),
    IpId(u16),
    IpProto {
        cmp: Cmp,
    },
    Ack(u32),
    Seq(u32),
    Window {
        size: u16,
        negated: bool,
    },
    Flags(TcpFlags),
    /// `stream_size:server|client|both|either, op, N`.
    StreamSize {
        side: String,
        cmp: Cmp,
    },
    Filesize(Cmp),
    Filestore {
        argument: Option<String>,
    },
    FileHash(FileHashList),
    Other(OtherOption),
}

/// Sticky buffers: keyword (lower case) to canonical buffer name.
const STICKY_BUFFERS: &[(&str, &str)] = &[
    ("pkt_data", "pkt_data"),
    ("file_data", "file.data"),
    ("file.data", "file.data"),
    ("file.name", "file.name"),
    ("file.magic", "file.magic"),
    ("base64_data", "base64_data"),
    ("http.uri", "http.uri"),
    ("http.uri.raw", "http.uri.raw"),
    ("http.method", "http.method"),
    ("http.host", "http.host"),
    ("http.host.raw", "http.host.raw"),
    ("http.header", "http.header"),
    ("http.header.raw", "http.header.raw"),
    ("http.header_names", "http.header_names"),
    ("http_header_names", "http.header_names"),
    ("http.user_agent", "http.user_agent"),
    ("http.cookie", "http.cookie"),
    ("http.content_type", "http.content_type"),
    ("http_content_type", "http.content_type"),
    ("http.content_len", "http.content_len"),
    ("http_content_len", "http.content_len"),
    ("http.stat_code", "http.stat_code"),
    ("http.stat_msg", "http.stat_msg"),
    ("http.request_line", "http.request_line"),
    ("http_request_line", "http.request_line"),
    ("http.response_line", "http.response_line"),
    ("http_response_line", "http.response_line"),
    ("http.request_body", "http.request_body"),
    ("http.response_body", "http.response_body"),
    ("http.server", "http.server"),
    ("http_server", "http.server"),
    ("http.location", "http.location"),
    ("http_location", "http.location"),
    ("http.accept", "http.accept"),
    ("http_accept", "http.accept"),
    ("http.accept_enc", "http.accept_enc"),
    ("http_accept_enc", "http.accept_enc"),
    ("http.accept_lang", "http.accept_lang"),
    ("http_accept_lang", "http.accept_lang"),
    ("http.connection", "http.connection"),
    ("http_connection", "http.connection"),
    ("http.referer", "http.referer"),
    ("http_referer", "http.referer"),
    ("http.protocol", "http.protocol"),
    ("http_protocol", "http.protocol"),
    ("http.start", "http.start"),
    ("http_start", "http.start"),
    ("http.request_header", "http.request_header"),
    ("http.response_header", "http.response_header"),
    ("http2.header_name", "http2.header_name"),
    ("http2.header", "http2.header"),
    ("dns.query", "dns.query"),
    ("dns_query", "dns.query"),
    ("dns.query.name", "dns.query.name"),
    ("dns.answer.name", "dns.answer.name"),
    ("dns.queries.rrname", "dns.queries.rrname"),
    ("dns.answers.rrname", "dns.answers.rrname"),
    ("tls.sni", "tls.sni"),
    ("tls_sni", "tls.sni"),
    ("tls.cert_subject", "tls.cert_subject"),
    ("tls_cert_subject", "tls.cert_subject"),
    ("tls.cert_issuer", "tls.cert_issuer"),
    ("tls_cert_issuer", "tls.cert_issuer"),
    ("tls.cert_serial", "tls.cert_serial"),
    ("tls_cert_serial", "tls.cert_serial"),
    ("tls.cert_fingerprint", "tls.cert_fingerprint"),
    ("tls_cert_fingerprint", "tls.cert_fingerprint"),
    ("tls.certs", "tls.certs"),
    ("tls.subjectaltname", "tls.subjectaltname"),
    ("tls.alpn", "tls.alpn"),
    ("tls.random", "tls.random"),
    ("tls.random_time", "tls.random_time"),
    ("tls.random_bytes", "tls.random_bytes"),
    ("ja3.hash", "ja3.hash"),
    ("ja3_hash", "ja3.hash"),
    ("ja3.string", "ja3.string"),
    ("ja3_string", "ja3.string"),
    ("ja3s.hash", "ja3s.hash"),
    ("ja3s_hash", "ja3s.hash"),
    ("ja3s.string", "ja3s.string"),
    ("ja3s_string", "ja3s.string"),
    ("ja4.hash", "ja4.hash"),
    ("ssh.proto", "ssh.proto"),
    ("ssh_proto", "ssh.proto"),
    ("ssh.software", "ssh.software"),
    ("ssh_software", "ssh.software"),
    ("ssh.hassh", "ssh.hassh"),
    ("ssh.hassh.string", "ssh.hassh.string"),
    ("ssh.hassh.server", "ssh.hassh.server"),
    ("ssh.hassh.server.string", "ssh.hassh.server.string"),
    ("smtp.helo", "smtp.helo"),
    ("smtp.mail_from", "smtp.mail_from"),
    ("smtp.rcpt_to", "smtp.rcpt_to"),
    ("email.from", "email.from"),
    ("email.to", "email.to"),
    ("email.cc", "email.cc"),
    ("email.subject", "email.subject"),
    ("email.date", "email.date"),
    ("email.message_id", "email.message_id"),
    ("email.x_mailer", "email.x_mailer"),
    ("email.url", "email.url"),
    ("email.received", "email.received"),
    ("ftp.command", "ftp.command"),
    ("ftp.command_data", "ftp.command_data"),
    ("ftp.reply", "ftp.reply"),
    ("ftp.completion_code", "ftp.completion_code"),
    ("smb.named_pipe", "smb.named_pipe"),
    ("smb.share", "smb.share"),
    ("smb.ntlmssp_user", "smb.ntlmssp_user"),
    ("smb.ntlmssp_domain", "smb.ntlmssp_domain"),
    ("dce_stub_data", "dce_stub_data"),
    ("krb5_cname", "krb5.cname"),
    ("krb5.cname", "krb5.cname"),
    ("krb5_sname", "krb5.sname"),
    ("krb5.sname", "krb5.sname"),
    ("sip.method", "sip.method"),
    ("sip.uri", "sip.uri"),
    ("sip.request_line", "sip.request_line"),
    ("sip.stat_code", "sip.stat_code"),
    ("sip.stat_msg", "sip.stat_msg"),
    ("sip.response_line", "sip.response_line"),
    ("sip.protocol", "sip.protocol"),
    ("quic.sni", "quic.sni"),
    ("quic.ua", "quic.ua"),
    ("quic.version", "quic.version"),
    ("snmp.community", "snmp.community"),
    ("tcp.hdr", "tcp.hdr"),
    ("udp.hdr", "udp.hdr"),
    ("ipv4.hdr", "ipv4.hdr"),
    ("ipv6.hdr", "ipv6.hdr"),
    ("icmpv4.hdr", "icmpv4.hdr"),
    ("icmpv6.hdr", "icmpv6.hdr"),
    ("dnp3_data", "dnp3_data"),
];

/// Legacy content modifiers: they move the preceding content into a buffer.
const CONTENT_MODIFIERS: &[(&str, &str)] = &[
    ("http_uri", "http.uri"),
    ("http_raw_uri", "http.uri.raw"),
    ("http_header", "http.header"),
    ("http_raw_header", "http.header.raw"),
    ("http_method", "http.method"),
    ("http_cookie", "http.cookie"),
    ("http_user_agent", "http.user_agent"),
    ("http_host", "http.host"),
    ("http_raw_host", "http.host.raw"),
    ("http_stat_code", "http.stat_code"),
    ("http_stat_msg", "http.stat_msg"),
    ("http_client_body", "http.request_body"),
    ("http_server_body", "http.response_body"),
];

/// Keywords Weir parses and keeps as written (see [`OtherOption`]).
const KEPT_AS_WRITTEN: &[&str] = &[
    "tag",
    "asn1",
    "ftpbounce",
    "ssl_state",
    "ssl_version",
    "tls.version",
    "tls_cert_notbefore",
    "tls_cert_notafter",
    "tls_cert_expired",
    "tls_cert_valid",
    "tls.store",
    "tls_store",
    "tls.fingerprint",
    "app-layer-event",
    "app-layer-state",
    "decode-event",
    "stream-event",
    "engine-event",
    "requires",
    "bypass",
    "prefilter",
    "sameip",
    "ipopts",
    "fragbits",
    "fragoffset",
    "tos",
    "tcp.mss",
    "geoip",
    "iprep",
    "dataset",
    "datarep",
    "rpc",
    "dce_iface",
    "dce_opnum",
    "krb5_msg_type",
    "krb5_err_code",
    "icmpv6.mtu",
    "dnp3_func",
    "dnp3_ind",
    "dnp3_obj",
    "modbus",
    "enip_command",
    "cip_service",
    "replace",
    "lua",
    "luajit",
    "flow.age",
    "flow.pkts",
    "flow.bytes",
    "dns.opcode",
    "dns.rcode",
    "dns.rrtype",
    "ssh.protoversion",
    "ssh.softwareversion",
    "tls.cert_chain_len",
    "config",
    "ike.exchtype",
    "snmp.version",
    "snmp.pdu_type",
    "nfs_procedure",
    "nfs.version",
    "template2",
    "pcrexform",
    "file.store",
    "ftpdata_command",
    "ftp.dynamic_port",
    "ftp.mode",
    "mqtt.type",
    "ldap.request.operation",
];

fn sticky_buffer(keyword: &str) -> Option<&'static str> {
    STICKY_BUFFERS
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|(_, b)| *b)
}

fn content_modifier(keyword: &str) -> Option<&'static str> {
    CONTENT_MODIFIERS
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|(_, b)| *b)
}

fn kept_keyword(keyword: &str) -> Option<&'static str> {
    KEPT_AS_WRITTEN.iter().copied().find(|k| *k == keyword)
}

fn transform(keyword: &str, value: Option<&str>) -> Option<Transform> {
    Some(match keyword {
        "dotprefix" => Transform::DotPrefix,
        "strip_whitespace" => Transform::StripWhitespace,
        "compress_whitespace" => Transform::CompressWhitespace,
        "to_lowercase" => Transform::ToLowercase,
        "to_uppercase" => Transform::ToUppercase,
        "to_md5" => Transform::ToMd5,
        "to_sha1" => Transform::ToSha1,
        "to_sha256" => Transform::ToSha256,
        "url_decode" => Transform::UrlDecode,
        "header_lowercase" => Transform::HeaderLowercase,
        "strip_pseudo_headers" => Transform::StripPseudoHeaders,
        "xor" => {
            let key = value
                .and_then(|v| strip_quotes(v).ok())
                .and_then(|v| parse_content_bytes(&format!("|{v}|")).ok())?;
            Transform::Xor(key)
        }
        "from_base64" => Transform::Other {
            name: "from_base64",
            argument: value.map(str::to_string),
        },
        "pcrexform" => Transform::Other {
            name: "pcrexform",
            argument: value.map(str::to_string),
        },
        _ => return None,
    })
}

/// Rule under construction.
struct Builder<'a> {
    classification: &'a Classification,
    base_dir: Option<&'a Path>,
    sid: Option<u32>,
    gid: u32,
    rev: u32,
    msg: String,
    classtype: Option<String>,
    class_priority: Option<u8>,
    priority: Option<u8>,
    references: Vec<Reference>,
    metadata: Vec<(String, String)>,
    target: Option<Target>,
    matches: Vec<Match>,
    conditions: Vec<Detection>,
    threshold: Option<Threshold>,
    detection_filter: Option<DetectionFilter>,
    noalert: bool,
    buffer: Buffer,
    last_content: Option<usize>,
    vars: HashSet<String>,
    warnings: Vec<Warning>,
}

pub fn parse_rule(
    text: &str,
    vars: &ResolvedVars,
    classification: &Classification,
    base_dir: Option<&Path>,
) -> Result<(Rule, Vec<Warning>), RuleError> {
    let raw = split_rule(text.trim())?;
    if raw.header.len() != 7 {
        return Err(RuleError::HeaderFields(raw.header.len()));
    }
    let h = &raw.header;
    let action = Action::parse(h[0]).ok_or_else(|| RuleError::UnknownAction(h[0].to_string()))?;
    let protocol =
        Protocol::parse(h[1]).ok_or_else(|| RuleError::UnknownProtocol(h[1].to_string()))?;
    let src_addr = parse_address(h[2], vars)?;
    let src_port = parse_port(h[3], vars)?;
    let direction =
        RuleDirection::parse(h[4]).ok_or_else(|| RuleError::BadDirection(h[4].to_string()))?;
    let dst_addr = parse_address(h[5], vars)?;
    let dst_port = parse_port(h[6], vars)?;

    let mut b = Builder {
        classification,
        base_dir,
        sid: None,
        gid: 1,
        rev: 0,
        msg: String::new(),
        classtype: None,
        class_priority: None,
        priority: None,
        references: Vec::new(),
        metadata: Vec::new(),
        target: None,
        matches: Vec::new(),
        conditions: Vec::new(),
        threshold: None,
        detection_filter: None,
        noalert: false,
        buffer: Buffer::payload(),
        last_content: None,
        vars: HashSet::new(),
        warnings: Vec::new(),
    };
    for option in &raw.options {
        b.option(option)?;
    }
    let sid = b.sid.ok_or(RuleError::MissingSid)?;
    let priority = b.priority.or(b.class_priority).unwrap_or(3);
    let rule = Rule {
        action,
        protocol,
        src_addr,
        src_port,
        direction,
        dst_addr,
        dst_port,
        sid,
        gid: b.gid,
        rev: b.rev,
        msg: b.msg,
        classtype: b.classtype,
        priority,
        references: b.references,
        metadata: b.metadata,
        target: b.target,
        matches: b.matches,
        conditions: b.conditions,
        threshold: b.threshold,
        detection_filter: b.detection_filter,
        noalert: b.noalert,
    };
    Ok((rule, b.warnings))
}

fn need<'v>(keyword: &str, value: Option<&'v str>) -> Result<&'v str, RuleError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(RuleError::bad(keyword, "needs a value")),
    }
}

fn no_value(keyword: &str, value: Option<&str>) -> Result<(), RuleError> {
    match value {
        None => Ok(()),
        Some(_) => Err(RuleError::bad(keyword, "takes no value")),
    }
}

fn number<T: std::str::FromStr>(keyword: &str, s: &str) -> Result<T, RuleError> {
    let s = s.trim();
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|v| v.to_string().parse().ok())
    } else {
        s.parse().ok()
    };
    parsed
        .ok_or_else(|| RuleError::bad(keyword, format!("`{}` is not a valid number", truncate(s))))
}

/// Parses Suricata's integer comparison syntax.
fn parse_cmp(keyword: &str, s: &str) -> Result<Cmp, RuleError> {
    let s = s.trim();
    let n = |t: &str| number::<u64>(keyword, t);
    if let Some((a, b)) = s.split_once("<>") {
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(RuleError::bad(keyword, "range must be low<>high"));
        }
        return Ok(Cmp::Between(a, b));
    }
    if let Some(rest) = s.strip_prefix("<=") {
        return Ok(Cmp::Le(n(rest)?));
    }
    if let Some(rest) = s.strip_prefix(">=") {
        return Ok(Cmp::Ge(n(rest)?));
    }
    if let Some(rest) = s.strip_prefix('<') {
        return Ok(Cmp::Lt(n(rest)?));
    }
    if let Some(rest) = s.strip_prefix('>') {
        return Ok(Cmp::Gt(n(rest)?));
    }
    if let Some(rest) = s.strip_prefix("!=").or_else(|| s.strip_prefix('!')) {
        if let Some((a, b)) = rest.split_once('-') {
            return Ok(Cmp::NotBetween(n(a)?, n(b)?));
        }
        return Ok(Cmp::Ne(n(rest)?));
    }
    let s = s.strip_prefix('=').unwrap_or(s);
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(RuleError::bad(keyword, "range must be low-high"));
        }
        return Ok(Cmp::Between(a, b));
    }
    Ok(Cmp::Eq(n(s)?))
}

fn split_args(s: &str) -> Vec<&str> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

fn parse_base(keyword: &str, s: &str) -> Result<NumBase, RuleError> {
    match s {
        "hex" => Ok(NumBase::Hex),
        "dec" => Ok(NumBase::Dec),
        "oct" => Ok(NumBase::Oct),
        other => Err(RuleError::bad(keyword, format!("unknown base `{other}`"))),
    }
}

fn parse_track(keyword: &str, s: &str) -> Result<Track, RuleError> {
    match s {
        "by_src" => Ok(Track::BySrc),
        "by_dst" => Ok(Track::ByDst),
        "by_rule" => Ok(Track::ByRule),
        "by_both" => Ok(Track::ByBoth),
        "by_flow" => Ok(Track::ByFlow),
        other => Err(RuleError::bad(keyword, format!("unknown track `{other}`"))),
    }
}

impl Builder<'_> {
    fn option(&mut self, option: &RawOption<'_>) -> Result<(), RuleError> {
        let keyword = option.keyword.to_ascii_lowercase();
        let k = keyword.as_str();
        let value = option.value;
        match k {
            "msg" => self.msg = unquote(need(k, value)?)?,
            "sid" => {
                let sid: u32 = number(k, need(k, value)?)?;
                if sid == 0 {
                    return Err(RuleError::bad(k, "sid must be greater than 0"));
                }
                self.sid = Some(sid);
            }
            "rev" => self.rev = number(k, need(k, value)?)?,
            "gid" => self.gid = number(k, need(k, value)?)?,
            "priority" => {
                let p: u8 = number(k, need(k, value)?)?;
                if p == 0 {
                    return Err(RuleError::bad(k, "priority must be 1-255"));
                }
                self.priority = Some(p);
            }
            "classtype" => self.classtype(need(k, value)?)?,
            "reference" => {
                let v = need(k, value)?;
                let (kind, val) = v
                    .split_once(',')
                    .ok_or_else(|| RuleError::bad(k, "expected type,value"))?;
                self.references.push(Reference {
                    kind: kind.trim().to_string(),
                    value: val.trim().to_string(),
                });
            }
            "metadata" => {
                for entry in split_args(need(k, value)?) {
                    let (key, val) = entry.split_once(char::is_whitespace).unwrap_or((entry, ""));
                    self.metadata
                        .push((key.to_string(), val.trim().to_string()));
                }
            }
            "target" => {
                self.target = Some(match need(k, value)? {
                    "src_ip" => Target::Source,
                    "dest_ip" => Target::Destination,
                    other => {
                        return Err(RuleError::bad(
                            k,
                            format!("`{other}` is not src_ip or dest_ip"),
                        ));
                    }
                })
            }
            "noalert" => {
                no_value(k, value)?;
                self.noalert = true;
            }
            "content" => self.content(need(k, value)?, Buffer::PAYLOAD, false)?,
            "uricontent" => self.content(need(k, value)?, "http.uri", true)?,
            "nocase" => {
                no_value(k, value)?;
                self.last_content_mut(k)?.nocase = true;
            }
            "rawbytes" => {
                no_value(k, value)?;
                self.last_content_mut(k)?.rawbytes = true;
            }
            "depth" | "offset" | "distance" | "within" => {
                self.content_position(k, need(k, value)?)?
            }
            "startswith" | "endswith" => {
                no_value(k, value)?;
                let c = self.last_content_mut(k)?;
                if k == "startswith" {
                    if c.depth.is_some()
                        || c.offset.is_some()
                        || c.distance.is_some()
                        || c.within.is_some()
                    {
                        return Err(RuleError::bad(
                            k,
                            "cannot be combined with depth/offset/distance/within",
                        ));
                    }
                    c.startswith = true;
                } else {
                    c.endswith = true;
                }
            }
            "fast_pattern" => {
                let fp = match value {
                    None => FastPattern::Yes,
                    Some("only") => FastPattern::Only,
                    Some(v) => {
                        let (o, l) = v
                            .split_once(',')
                            .ok_or_else(|| RuleError::bad(k, "expected only or offset,length"))?;
                        FastPattern::Slice {
                            offset: number(k, o)?,
                            length: number(k, l)?,
                        }
                    }
                };
                // Suricata allows one fast pattern per rule.
                let already = self.matches.iter().any(
                    |m| matches!(&m.inspection, Inspection::Content(c) if c.fast_pattern.is_some()),
                );
                if already {
                    return Err(RuleError::bad(
                        k,
                        "only one content per rule may be the fast pattern",
                    ));
                }
                let c = self.last_content_mut(k)?;
                if let FastPattern::Slice { offset, length } = fp
                    && usize::from(offset) + usize::from(length) > c.pattern.len()
                {
                    return Err(RuleError::bad(k, "slice runs past the end of the content"));
                }
                c.fast_pattern = Some(fp);
            }
            "pcre" => self.pcre(need(k, value)?)?,
            "isdataat" => self.isdataat(need(k, value)?)?,
            "bsize" => {
                let cmp = parse_cmp(k, need(k, value)?)?;
                self.push(Inspection::Bsize(cmp));
            }
            "byte_test" => self.byte_test(need(k, value)?)?,
            "byte_jump" => self.byte_jump(need(k, value)?)?,
            "byte_extract" => self.byte_extract(need(k, value)?)?,
            "byte_math" => self.byte_math(need(k, value)?)?,
            "base64_decode" => {
                let mut d = Base64Decode::default();
                for arg in split_args(value.unwrap_or("")) {
                    let (name, v) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
                    match name {
                        "bytes" => d.bytes = Some(number(k, v)?),
                        "offset" => d.offset = Some(number(k, v)?),
                        "relative" => d.relative = true,
                        other => {
                            return Err(RuleError::bad(k, format!("unknown option `{other}`")));
                        }
                    }
                }
                self.push(Inspection::Base64Decode(d));
            }
            "dsize" => self
                .conditions
                .push(Detection::Dsize(parse_cmp(k, need(k, value)?)?)),
            "urilen" => {
                let v = need(k, value)?;
                let (cmp, raw) = match v.split_once(',') {
                    Some((c, kind)) => match kind.trim() {
                        "raw" => (c, true),
                        "norm" => (c, false),
                        other => return Err(RuleError::bad(k, format!("unknown `{other}`"))),
                    },
                    None => (v, false),
                };
                self.conditions.push(Detection::Urilen {
                    cmp: parse_cmp(k, cmp)?,
                    raw,
                });
            }
            "ttl" => self
                .conditions
                .push(Detection::Ttl(parse_cmp(k, need(k, value)?)?)),
            "itype" => self
                .conditions
                .push(Detection::Itype(parse_cmp(k, need(k, value)?)?)),
            "icode" => self
                .conditions
                .push(Detection::Icode(parse_cmp(k, need(k, value)?)?)),
            "icmp_id" => self
                .conditions
                .push(Detection::IcmpId(number(k, need(k, value)?)?)),
            "icmp_seq" => self
                .conditions
                .push(Detection::IcmpSeq(number(k, need(k, value)?)?)),
            "id" => self
                .conditions
                .push(Detection::IpId(number(k, need(k, value)?)?)),
            "ack" => self
                .conditions
                .push(Detection::Ack(number(k, need(k, value)?)?)),
            "seq" => self
                .conditions
                .push(Detection::Seq(number(k, need(k, value)?)?)),
            "window" => {
                let v = need(k, value)?;
                let (negated, v) = match v.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, v),
                };
                self.conditions.push(Detection::Window {
                    size: number(k, v)?,
                    negated,
                });
            }
            "ip_proto" => {
                let v = need(k, value)?;
                let (prefix, name) =
                    v.split_at(v.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0));
                let number_text = match ip_proto_number(name) {
                    Some(n) => format!("{prefix}{n}"),
                    None => v.to_string(),
                };
                let cmp = parse_cmp(k, &number_text)?;
                self.conditions.push(Detection::IpProto { cmp });
            }
            "flags" | "tcp.flags" => self
                .conditions
                .push(Detection::Flags(parse_flags(k, need(k, value)?)?)),
            "flow" => self.flow(need(k, value)?)?,
            "flowbits" => self.flowbits(need(k, value)?)?,
            "xbits" => self.xbits(need(k, value)?)?,
            "flowint" => {
                let args = split_args(need(k, value)?);
                if args.len() < 2 || args.len() > 3 {
                    return Err(RuleError::bad(k, "expected name, op[, value]"));
                }
                self.conditions.push(Detection::Flowint {
                    name: args[0].to_string(),
                    op: args[1].to_string(),
                    value: args.get(2).map(|v| v.to_string()),
                });
            }
            "stream_size" => {
                let args = split_args(need(k, value)?);
                let [side, op, n] = args[..] else {
                    return Err(RuleError::bad(k, "expected side, op, number"));
                };
                if !matches!(side, "server" | "client" | "both" | "either") {
                    return Err(RuleError::bad(k, format!("unknown side `{side}`")));
                }
                let cmp = parse_cmp(k, &format!("{op}{n}"))?;
                self.conditions.push(Detection::StreamSize {
                    side: side.to_string(),
                    cmp,
                });
            }
            "app-layer-protocol" => {
                let v = need(k, value)?;
                let (negated, name) = match v.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, v),
                };
                let name = app_protocol(name)
                    .ok_or_else(|| RuleError::bad(k, format!("unknown protocol `{name}`")))?;
                self.conditions
                    .push(Detection::AppLayerProtocol { name, negated });
            }
            "threshold" => self.threshold = Some(self.threshold_value(k, need(k, value)?)?),
            "detection_filter" => {
                self.detection_filter = Some(self.detection_filter_value(k, need(k, value)?)?)
            }
            "filename" | "fileext" | "filemagic" => self.file_content(k, need(k, value)?)?,
            "filesize" => self
                .conditions
                .push(Detection::Filesize(parse_cmp(k, need(k, value)?)?)),
            "filestore" => self.conditions.push(Detection::Filestore {
                argument: value.map(str::to_string),
            }),
            "filemd5" | "filesha1" | "filesha256" => self.file_hashes(k, need(k, value)?)?,
            _ => {
                if let Some(name) = sticky_buffer(k) {
                    no_value(k, value)?;
                    self.buffer = Buffer::named(name);
                    if MULTI_INSTANCE_BUFFERS.contains(&name) {
                        // Unique per declaration that has matches after it.
                        self.buffer.instance = self.matches.len() as u32 + 1;
                    }
                } else if let Some(name) = content_modifier(k) {
                    no_value(k, value)?;
                    self.modify_last_content(k, name)?;
                } else if let Some(t) = transform(k, value) {
                    if self.buffer.is_payload() {
                        return Err(RuleError::bad(k, "transforms need a sticky buffer first"));
                    }
                    self.buffer.transforms.push(t);
                } else if let Some(known) = kept_keyword(k) {
                    self.conditions.push(Detection::Other(OtherOption {
                        keyword: known,
                        value: value.map(str::to_string),
                    }));
                } else {
                    return Err(RuleError::UnknownKeyword(option.keyword.to_string()));
                }
            }
        }
        Ok(())
    }

    fn classtype(&mut self, value: &str) -> Result<(), RuleError> {
        let name = value.trim().trim_matches('"');
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(RuleError::bad(
                "classtype",
                format!("invalid name `{}`", truncate(name)),
            ));
        }
        // Suricata keeps an unknown class type (with a warning) at the default priority 3.
        let (canonical, priority) = match self.classification.get(name) {
            Some(t) => (t.name.clone(), t.priority),
            None => {
                self.warnings
                    .push(Warning::UnknownClasstype(name.to_string()));
                (name.to_string(), 3)
            }
        };
        // Of several class types the one with the highest priority (lowest number) wins.
        if self.class_priority.is_none_or(|p| priority < p) {
            self.class_priority = Some(priority);
            self.classtype = Some(canonical);
        }
        Ok(())
    }

    fn push(&mut self, inspection: Inspection) {
        self.matches.push(Match {
            buffer: self.buffer.clone(),
            inspection,
        });
    }

    fn last_content_mut(&mut self, keyword: &str) -> Result<&mut Content, RuleError> {
        let no_content = || RuleError::NoPrecedingContent {
            keyword: keyword.to_string(),
        };
        let index = self.last_content.ok_or_else(no_content)?;
        match self.matches.get_mut(index).map(|m| &mut m.inspection) {
            Some(Inspection::Content(c)) => Ok(c),
            _ => Err(no_content()),
        }
    }

    fn content(
        &mut self,
        value: &str,
        buffer: &'static str,
        legacy_uri: bool,
    ) -> Result<(), RuleError> {
        let keyword = if legacy_uri { "uricontent" } else { "content" };
        let (negated, quoted) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, value),
        };
        if !quoted.starts_with('"') {
            return Err(RuleError::bad(keyword, "value must be quoted"));
        }
        let inner = strip_quotes(quoted)?;
        let pattern =
            parse_content_bytes(inner).map_err(|reason| RuleError::bad(keyword, reason))?;
        let content = Content {
            pattern,
            negated,
            ..Content::default()
        };
        let target = if legacy_uri {
            Buffer::named(buffer)
        } else {
            self.buffer.clone()
        };
        self.matches.push(Match {
            buffer: target,
            inspection: Inspection::Content(content),
        });
        self.last_content = Some(self.matches.len() - 1);
        Ok(())
    }

    fn content_position(&mut self, keyword: &str, value: &str) -> Result<(), RuleError> {
        let parsed = match value.trim().parse::<i64>() {
            Ok(n) => Value::Lit(n),
            Err(_) => {
                let name = value.trim();
                if !self.vars.contains(name) {
                    return Err(RuleError::bad(
                        keyword,
                        format!("`{}` is neither a number nor a variable", truncate(name)),
                    ));
                }
                Value::Var(name.to_string())
            }
        };
        let c = self.last_content_mut(keyword)?;
        let absolute = c.depth.is_some() || c.offset.is_some() || c.startswith;
        let relative = c.distance.is_some() || c.within.is_some();
        let is_relative_keyword = matches!(keyword, "distance" | "within");
        if (is_relative_keyword && absolute) || (!is_relative_keyword && relative) {
            return Err(RuleError::bad(
                keyword,
                "cannot mix relative (distance/within) and absolute (depth/offset)",
            ));
        }
        let pattern_len = i64::try_from(c.pattern.len()).unwrap_or(i64::MAX);
        match (&parsed, keyword) {
            (Value::Lit(n), "depth" | "within") if *n < pattern_len => {
                return Err(RuleError::bad(
                    keyword,
                    format!("{n} is less than the content length {pattern_len}"),
                ));
            }
            (Value::Lit(n), "depth" | "offset") if *n < 0 => {
                return Err(RuleError::bad(keyword, "must not be negative"));
            }
            _ => {}
        }
        let slot = match keyword {
            "depth" => &mut c.depth,
            "offset" => &mut c.offset,
            "distance" => &mut c.distance,
            _ => &mut c.within,
        };
        if slot.is_some() {
            return Err(RuleError::bad(keyword, "given twice for one content"));
        }
        *slot = Some(parsed);
        Ok(())
    }

    fn modify_last_content(
        &mut self,
        keyword: &str,
        buffer: &'static str,
    ) -> Result<(), RuleError> {
        if !self.buffer.is_payload() {
            return Err(RuleError::bad(
                keyword,
                format!(
                    "used while sticky buffer {} is set (reset it with pkt_data)",
                    self.buffer.name
                ),
            ));
        }
        // As in Suricata, the modifier takes the last content still in the payload list,
        // which need not be the last content of the rule (`content:"a"; http_host; http_host;`
        // moves the content before "a", if there is one).
        let m = self
            .matches
            .iter_mut()
            .rev()
            .find(|m| m.buffer.is_payload() && matches!(m.inspection, Inspection::Content(_)))
            .ok_or_else(|| RuleError::NoPrecedingContent {
                keyword: keyword.to_string(),
            })?;
        if let Inspection::Content(c) = &m.inspection
            && c.rawbytes
        {
            return Err(RuleError::bad(keyword, "cannot be combined with rawbytes"));
        }
        m.buffer = Buffer::named(buffer);
        Ok(())
    }

    fn pcre(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "pcre";
        let (negated, quoted) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, value),
        };
        // Unlike content, Suricata lets a regex hold a bare `"` (ET rules rely on it).
        let inner = strip_outer_quotes(quoted)?;
        let body = inner
            .strip_prefix('/')
            .ok_or_else(|| RuleError::bad(k, "regex must start with /"))?;
        let end = body
            .rfind('/')
            .ok_or_else(|| RuleError::bad(k, "regex must end with /"))?;
        let (pattern, flags) = (&body[..end], &body[end + 1..]);
        let mut p = Pcre {
            pattern: pattern.to_string(),
            negated,
            ..Pcre::default()
        };
        let mut buffer: Option<&'static str> = None;
        for flag in flags.chars() {
            let mut set_buffer = |name: &'static str| buffer = Some(name);
            match flag {
                'i' => p.caseless = true,
                's' => p.dotall = true,
                'm' => p.multiline = true,
                'x' => p.extended = true,
                'A' => p.anchored = true,
                'E' => p.dollar_endonly = true,
                'G' => p.ungreedy = true,
                'R' => p.relative = true,
                'O' => p.no_match_limit = true,
                'B' => p.rawbytes = true,
                'U' => set_buffer("http.uri"),
                'I' => set_buffer("http.uri.raw"),
                'P' => set_buffer("http.request_body"),
                'Q' => set_buffer("file.data"),
                'H' => set_buffer("http.header"),
                'D' => set_buffer("http.header.raw"),
                'M' => set_buffer("http.method"),
                'C' => set_buffer("http.cookie"),
                'S' => set_buffer("http.stat_code"),
                'Y' => set_buffer("http.stat_msg"),
                'V' => set_buffer("http.user_agent"),
                'W' => set_buffer("http.host"),
                'Z' => set_buffer("http.host.raw"),
                other => return Err(RuleError::bad(k, format!("unknown flag `{other}`"))),
            }
        }
        compile_pcre(&p)?;
        let target = match buffer {
            Some(name) => {
                // `Q` names the response body, which `http.response_body` also is.
                let same_body = name == "file.data" && self.buffer.name == "http.response_body";
                if same_body {
                    self.buffer.clone()
                } else if !self.buffer.is_payload() && self.buffer.name != name {
                    return Err(RuleError::bad(
                        k,
                        format!(
                            "buffer flag conflicts with sticky buffer {}",
                            self.buffer.name
                        ),
                    ));
                } else if self.buffer.name == name {
                    self.buffer.clone()
                } else {
                    Buffer::named(name)
                }
            }
            None => self.buffer.clone(),
        };
        self.matches.push(Match {
            buffer: target,
            inspection: Inspection::Pcre(p),
        });
        Ok(())
    }

    fn value_or_var(&self, keyword: &str, s: &str) -> Result<Value, RuleError> {
        let s = s.trim();
        if let Ok(n) = number::<i64>(keyword, s) {
            return Ok(Value::Lit(n));
        }
        if self.vars.contains(s) {
            Ok(Value::Var(s.to_string()))
        } else {
            Err(RuleError::bad(
                keyword,
                format!("`{}` is neither a number nor a variable", truncate(s)),
            ))
        }
    }

    fn isdataat(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "isdataat";
        let args = split_args(value);
        let first = args
            .first()
            .copied()
            .ok_or_else(|| RuleError::bad(k, "needs an offset"))?;
        let (negated, offset) = match first.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, first),
        };
        let mut d = IsDataAt {
            offset: self.value_or_var(k, offset)?,
            negated,
            relative: false,
            rawbytes: false,
        };
        for arg in &args[1..] {
            match *arg {
                "relative" => d.relative = true,
                "rawbytes" => d.rawbytes = true,
                other => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
            }
        }
        self.push(Inspection::IsDataAt(d));
        Ok(())
    }

    fn byte_test(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "byte_test";
        let args = split_args(value);
        if args.len() < 4 {
            return Err(RuleError::bad(k, "expected bytes, operator, value, offset"));
        }
        // ET ships `byte_test:0,...,string,dec` enabled; only string mode can mean anything by 0.
        let string_mode = args[4..].contains(&"string");
        let bytes = if args[0] == "0" && string_mode {
            0
        } else {
            byte_count(k, args[0])?
        };
        let op_text = args[1];
        let (negated, op_text) = match op_text.strip_prefix('!') {
            Some("") => (true, "="),
            Some(rest) => (true, rest),
            None => (false, op_text),
        };
        let op = match op_text {
            "<" => ByteTestOp::Lt,
            ">" => ByteTestOp::Gt,
            "=" => ByteTestOp::Eq,
            "<=" => ByteTestOp::Le,
            ">=" => ByteTestOp::Ge,
            "&" => ByteTestOp::And,
            "^" => ByteTestOp::Xor,
            other => return Err(RuleError::bad(k, format!("unknown operator `{other}`"))),
        };
        let mut t = ByteTest {
            bytes,
            negated,
            op,
            value: self.value_or_var(k, args[2])?,
            offset: self.value_or_var(k, args[3])?,
            relative: false,
            endian: Endian::Big,
            string: None,
            dce: false,
            bitmask: None,
        };
        for arg in &args[4..] {
            match *arg {
                "relative" => t.relative = true,
                "big" => t.endian = Endian::Big,
                "little" => t.endian = Endian::Little,
                "dce" => t.dce = true,
                "string" => t.string = Some(NumBase::Dec),
                "hex" | "dec" | "oct" => t.string = Some(parse_base(k, arg)?),
                other => match other.split_once(char::is_whitespace) {
                    Some(("bitmask", m)) => t.bitmask = Some(number(k, m)?),
                    _ => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
                },
            }
        }
        check_string_bytes(k, t.string, bytes)?;
        self.push(Inspection::ByteTest(t));
        Ok(())
    }

    fn byte_jump(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "byte_jump";
        let args = split_args(value);
        if args.len() < 2 {
            return Err(RuleError::bad(k, "expected bytes, offset"));
        }
        let bytes = byte_count(k, args[0])?;
        let mut j = ByteJump {
            bytes,
            offset: self.value_or_var(k, args[1])?,
            relative: false,
            multiplier: 1,
            endian: Endian::Big,
            string: None,
            align: false,
            from_beginning: false,
            from_end: false,
            post_offset: 0,
            dce: false,
            bitmask: None,
        };
        for arg in &args[2..] {
            match *arg {
                "relative" => j.relative = true,
                "big" => j.endian = Endian::Big,
                "little" => j.endian = Endian::Little,
                "dce" => j.dce = true,
                "string" => j.string = Some(NumBase::Dec),
                "hex" | "dec" | "oct" => j.string = Some(parse_base(k, arg)?),
                "align" => j.align = true,
                "from_beginning" => j.from_beginning = true,
                "from_end" => j.from_end = true,
                other => match other.split_once(char::is_whitespace) {
                    Some(("multiplier", m)) => j.multiplier = number(k, m)?,
                    Some(("post_offset", m)) => j.post_offset = number(k, m.trim())?,
                    Some(("bitmask", m)) => j.bitmask = Some(number(k, m)?),
                    _ => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
                },
            }
        }
        if j.from_beginning && j.from_end {
            return Err(RuleError::bad(
                k,
                "from_beginning and from_end exclude each other",
            ));
        }
        check_string_bytes(k, j.string, bytes)?;
        self.push(Inspection::ByteJump(j));
        Ok(())
    }

    fn declare_var(&mut self, keyword: &str, name: &str) -> Result<String, RuleError> {
        // ET names variables like `SSL.Client_Hello.length`; Suricata accepts the dots.
        let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if name.is_empty()
            || !name.chars().all(valid_char)
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(RuleError::bad(
                keyword,
                format!("invalid variable name `{}`", truncate(name)),
            ));
        }
        if self.vars.len() >= MAX_RULE_VARS {
            return Err(RuleError::bad(
                keyword,
                format!("more than {MAX_RULE_VARS} variables"),
            ));
        }
        self.vars.insert(name.to_string());
        Ok(name.to_string())
    }

    fn byte_extract(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "byte_extract";
        let args = split_args(value);
        if args.len() < 3 {
            return Err(RuleError::bad(k, "expected bytes, offset, name"));
        }
        let bytes = byte_count(k, args[0])?;
        let mut e = ByteExtract {
            bytes,
            offset: number(k, args[1])?,
            name: self.declare_var(k, args[2])?,
            relative: false,
            multiplier: 1,
            endian: Endian::Big,
            string: None,
            align: 0,
            dce: false,
            bitmask: None,
        };
        for arg in &args[3..] {
            match *arg {
                "relative" => e.relative = true,
                "big" => e.endian = Endian::Big,
                "little" => e.endian = Endian::Little,
                "dce" => e.dce = true,
                "string" => e.string = Some(NumBase::Dec),
                "hex" | "dec" | "oct" => e.string = Some(parse_base(k, arg)?),
                other => match other.split_once(char::is_whitespace) {
                    Some(("multiplier", m)) => e.multiplier = number(k, m)?,
                    Some(("align", m)) => {
                        e.align = number(k, m)?;
                        if e.align != 2 && e.align != 4 {
                            return Err(RuleError::bad(k, "align must be 2 or 4"));
                        }
                    }
                    Some(("bitmask", m)) => e.bitmask = Some(number(k, m)?),
                    _ => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
                },
            }
        }
        check_string_bytes(k, e.string, bytes)?;
        self.push(Inspection::ByteExtract(e));
        Ok(())
    }

    fn byte_math(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "byte_math";
        let mut bytes = None;
        let mut offset = None;
        let mut op = None;
        let mut rvalue = None;
        let mut result = None;
        let mut m = (false, Endian::Big, None, false, None);
        for arg in split_args(value) {
            let (name, v) = arg
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
                .unwrap_or((arg, ""));
            match name {
                "bytes" => bytes = Some(byte_count(k, v)?),
                "offset" => offset = Some(number::<i32>(k, v)?),
                "oper" => {
                    op = Some(match v {
                        "+" => ByteMathOp::Add,
                        "-" => ByteMathOp::Sub,
                        "*" => ByteMathOp::Mul,
                        "/" => ByteMathOp::Div,
                        "<<" => ByteMathOp::Shl,
                        ">>" => ByteMathOp::Shr,
                        other => {
                            return Err(RuleError::bad(k, format!("unknown operator `{other}`")));
                        }
                    })
                }
                "rvalue" => rvalue = Some(self.value_or_var(k, v)?),
                "result" => result = Some(v.to_string()),
                "relative" => m.0 = true,
                "endian" => {
                    m.1 = match v {
                        "big" => Endian::Big,
                        "little" => Endian::Little,
                        other => {
                            return Err(RuleError::bad(k, format!("unknown endian `{other}`")));
                        }
                    }
                }
                "string" => m.2 = Some(parse_base(k, v)?),
                "dce" => m.3 = true,
                "bitmask" => m.4 = Some(number(k, v)?),
                other => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
            }
        }
        let missing = |what: &str| RuleError::bad(k, format!("missing {what}"));
        let bytes = bytes.ok_or_else(|| missing("bytes"))?;
        let result = result.ok_or_else(|| missing("result"))?;
        let bm = ByteMath {
            bytes,
            offset: offset.ok_or_else(|| missing("offset"))?,
            op: op.ok_or_else(|| missing("oper"))?,
            rvalue: rvalue.ok_or_else(|| missing("rvalue"))?,
            result: self.declare_var(k, &result)?,
            relative: m.0,
            endian: m.1,
            string: m.2,
            dce: m.3,
            bitmask: m.4,
        };
        check_string_bytes(k, bm.string, bytes)?;
        self.push(Inspection::ByteMath(bm));
        Ok(())
    }

    fn flow(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "flow";
        let mut f = FlowOptions::default();
        for arg in split_args(value) {
            let set_dir = |f: &mut FlowOptions, d: Direction| {
                if f.direction.is_some_and(|old| old != d) {
                    return Err(RuleError::bad(
                        k,
                        "to_server and to_client exclude each other",
                    ));
                }
                f.direction = Some(d);
                Ok(())
            };
            match arg {
                "to_server" | "from_client" => set_dir(&mut f, Direction::ToServer)?,
                "to_client" | "from_server" => set_dir(&mut f, Direction::ToClient)?,
                "established" => f.established = true,
                "not_established" => f.not_established = true,
                "stateless" => f.stateless = true,
                "only_stream" => f.only_stream = true,
                "no_stream" => f.no_stream = true,
                "only_frag" => f.only_frag = true,
                "no_frag" => f.no_frag = true,
                other => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
            }
        }
        if f.established && f.not_established {
            return Err(RuleError::bad(
                k,
                "established and not_established exclude each other",
            ));
        }
        if f.only_stream && f.no_stream {
            return Err(RuleError::bad(
                k,
                "only_stream and no_stream exclude each other",
            ));
        }
        self.conditions.push(Detection::Flow(f));
        Ok(())
    }

    fn flowbits(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "flowbits";
        let (cmd, names) = match value.split_once(',') {
            Some((c, n)) => (c.trim(), Some(n.trim())),
            None => (value.trim(), None),
        };
        if cmd == "noalert" {
            if names.is_some() {
                return Err(RuleError::bad(k, "noalert takes no name"));
            }
            self.noalert = true;
            return Ok(());
        }
        let cmd = parse_bit_cmd(k, cmd)?;
        let names = names
            .filter(|n| !n.is_empty())
            .ok_or_else(|| RuleError::bad(k, "needs a name"))?;
        let any_of = names.contains('|');
        if any_of && names.contains('&') {
            return Err(RuleError::bad(k, "cannot mix | and &"));
        }
        if any_of && !matches!(cmd, FlowbitCmd::IsSet | FlowbitCmd::IsNotSet) {
            return Err(RuleError::bad(k, "| is only valid with isset/isnotset"));
        }
        let list: Vec<String> = names
            .split(['|', '&'])
            .map(|n| n.trim().to_string())
            .collect();
        if list
            .iter()
            .any(|n| n.is_empty() || n.contains(char::is_whitespace))
        {
            return Err(RuleError::bad(k, "invalid name"));
        }
        self.conditions.push(Detection::Flowbit(Flowbit {
            cmd,
            names: list,
            any_of,
        }));
        Ok(())
    }

    fn xbits(&mut self, value: &str) -> Result<(), RuleError> {
        let k = "xbits";
        let args = split_args(value);
        if args.len() < 3 {
            return Err(RuleError::bad(k, "expected cmd, name, track ..."));
        }
        let cmd = parse_bit_cmd(k, args[0])?;
        let mut track = None;
        let mut expire = None;
        for arg in &args[2..] {
            match arg
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
            {
                Some(("track", t)) => {
                    track = Some(match t {
                        "ip_src" => XbitTrack::IpSrc,
                        "ip_dst" => XbitTrack::IpDst,
                        "ip_pair" => XbitTrack::IpPair,
                        "tx" => XbitTrack::Tx,
                        other => return Err(RuleError::bad(k, format!("unknown track `{other}`"))),
                    })
                }
                Some(("expire", e)) => expire = Some(number(k, e)?),
                _ => return Err(RuleError::bad(k, format!("unknown option `{arg}`"))),
            }
        }
        let track = track.ok_or_else(|| RuleError::bad(k, "needs track"))?;
        self.conditions.push(Detection::Xbit {
            cmd,
            name: args[1].to_string(),
            track,
            expire,
        });
        Ok(())
    }

    fn threshold_value(&self, k: &str, value: &str) -> Result<Threshold, RuleError> {
        let (mut kind, mut track, mut count, mut seconds, mut multiplier) =
            (None, None, None, None, None);
        for arg in split_args(value) {
            let (name, v) = arg
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
                .unwrap_or((arg, ""));
            match name {
                "type" => {
                    kind = Some(match v {
                        "limit" => ThresholdKind::Limit,
                        "threshold" => ThresholdKind::Threshold,
                        "both" => ThresholdKind::Both,
                        "backoff" => ThresholdKind::Backoff,
                        other => return Err(RuleError::bad(k, format!("unknown type `{other}`"))),
                    })
                }
                "track" => track = Some(parse_track(k, v)?),
                "count" => count = Some(number(k, v)?),
                "seconds" => seconds = Some(number(k, v)?),
                "multiplier" => multiplier = Some(number(k, v)?),
                other => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
            }
        }
        let missing = |what: &str| RuleError::bad(k, format!("missing {what}"));
        let kind = kind.ok_or_else(|| missing("type"))?;
        let seconds = match (kind, seconds) {
            (ThresholdKind::Backoff, s) => s.unwrap_or(0),
            (_, s) => s.ok_or_else(|| missing("seconds"))?,
        };
        if kind == ThresholdKind::Backoff && multiplier.is_none() {
            return Err(missing("multiplier"));
        }
        Ok(Threshold {
            kind,
            track: track.ok_or_else(|| missing("track"))?,
            count: count.ok_or_else(|| missing("count"))?,
            seconds,
            multiplier,
        })
    }

    fn detection_filter_value(&self, k: &str, value: &str) -> Result<DetectionFilter, RuleError> {
        let (mut track, mut count, mut seconds, mut unique_on) = (None, None, None, None);
        for arg in split_args(value) {
            let (name, v) = arg
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
                .unwrap_or((arg, ""));
            match name {
                "track" => track = Some(parse_track(k, v)?),
                "count" => count = Some(number(k, v)?),
                "seconds" => seconds = Some(number(k, v)?),
                "unique_on" => unique_on = Some(v.to_string()),
                other => return Err(RuleError::bad(k, format!("unknown option `{other}`"))),
            }
        }
        let missing = |what: &str| RuleError::bad(k, format!("missing {what}"));
        Ok(DetectionFilter {
            track: track.ok_or_else(|| missing("track"))?,
            count: count.ok_or_else(|| missing("count"))?,
            seconds: seconds.ok_or_else(|| missing("seconds"))?,
            unique_on,
        })
    }

    /// `filename`, `fileext`, `filemagic`: Suricata 8 treats them as a content on the
    /// `file.name` / `file.magic` buffer; `fileext:"exe"` matches names ending in `.exe`.
    fn file_content(&mut self, k: &str, value: &str) -> Result<(), RuleError> {
        let (negated, quoted) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, value),
        };
        let inner = strip_quotes(quoted)?;
        let mut pattern = parse_content_bytes(inner).map_err(|reason| RuleError::bad(k, reason))?;
        let buffer = if k == "filemagic" {
            "file.magic"
        } else {
            "file.name"
        };
        let mut content = Content {
            negated,
            ..Content::default()
        };
        match k {
            "fileext" => {
                pattern.insert(0, b'.');
                content.nocase = true;
                content.endswith = !negated;
            }
            "filemagic" => content.nocase = true,
            _ => {}
        }
        content.pattern = pattern;
        self.matches.push(Match {
            buffer: Buffer::named(buffer),
            inspection: Inspection::Content(content),
        });
        self.last_content = Some(self.matches.len() - 1);
        Ok(())
    }

    fn file_hashes(&mut self, k: &str, value: &str) -> Result<(), RuleError> {
        let (kind, hex_len) = match k {
            "filemd5" => (FileHashKind::Md5, 32),
            "filesha1" => (FileHashKind::Sha1, 40),
            _ => (FileHashKind::Sha256, 64),
        };
        let (negated, name) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, value.trim()),
        };
        let name = strip_quotes(name)?;
        let path = match self.base_dir {
            Some(dir) if Path::new(name).is_relative() => dir.join(name),
            _ => PathBuf::from(name),
        };
        let hashes = read_hash_list(&path, hex_len).map_err(|reason| RuleError::bad(k, reason))?;
        self.conditions.push(Detection::FileHash(FileHashList {
            kind,
            negated,
            path,
            hashes,
        }));
        Ok(())
    }
}

fn parse_bit_cmd(k: &str, s: &str) -> Result<FlowbitCmd, RuleError> {
    Ok(match s {
        "set" => FlowbitCmd::Set,
        "isset" => FlowbitCmd::IsSet,
        "isnotset" => FlowbitCmd::IsNotSet,
        "unset" => FlowbitCmd::Unset,
        "toggle" => FlowbitCmd::Toggle,
        other => return Err(RuleError::bad(k, format!("unknown command `{other}`"))),
    })
}

fn byte_count(k: &str, s: &str) -> Result<u8, RuleError> {
    let n: u8 = number(k, s)?;
    if n == 0 || n > 23 {
        return Err(RuleError::bad(k, "byte count must be 1-23"));
    }
    Ok(n)
}

/// Binary extraction reads at most 8 bytes; ASCII digits at most 10 (23 for byte_extract).
fn check_string_bytes(k: &str, string: Option<NumBase>, bytes: u8) -> Result<(), RuleError> {
    let limit = match (string, k) {
        (None, _) => 8,
        (Some(_), "byte_extract") => 23,
        (Some(_), _) => 10,
    };
    if bytes > limit {
        return Err(RuleError::bad(
            k,
            format!("reads at most {limit} bytes in this mode"),
        ));
    }
    Ok(())
}

fn compile_pcre(p: &Pcre) -> Result<(), RuleError> {
    let mut pattern = String::with_capacity(p.pattern.len() + 4);
    if p.ungreedy {
        pattern.push_str("(?U)");
    }
    pattern.push_str(&p.pattern);
    pcre2::bytes::RegexBuilder::new()
        .caseless(p.caseless)
        .dotall(p.dotall)
        .multi_line(p.multiline)
        .extended(p.extended)
        .build(&pattern)
        .map(|_| ())
        .map_err(|e| RuleError::BadPcre(truncate(&e.to_string())))
}

fn ip_proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ip" | "hopopt" => 0,
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "ipv6-route" => 43,
        "ipv6-frag" => 44,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmpv6" => 58,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "sctp" => 132,
        _ => return None,
    })
}

fn parse_flags(k: &str, value: &str) -> Result<TcpFlags, RuleError> {
    let (flags_text, ignored_text) = match value.split_once(',') {
        Some((f, i)) => (f.trim(), Some(i.trim())),
        None => (value.trim(), None),
    };
    let bit = |c: char| -> Option<u8> {
        Some(match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            _ => return None,
        })
    };
    let mut t = TcpFlags {
        flags: 0,
        modifier: None,
        ignored: 0,
    };
    for c in flags_text.chars() {
        match c {
            '+' | '*' | '!' => {
                if t.modifier.is_some() {
                    return Err(RuleError::bad(k, "more than one modifier"));
                }
                t.modifier = Some(c);
            }
            c => {
                t.flags |= bit(c).ok_or_else(|| RuleError::bad(k, format!("unknown flag `{c}`")))?
            }
        }
    }
    if let Some(ignored) = ignored_text {
        for c in ignored.chars() {
            t.ignored |= bit(c).ok_or_else(|| RuleError::bad(k, format!("unknown flag `{c}`")))?;
        }
    }
    Ok(t)
}

/// Reads a hash list: one hex hash per line, optionally followed by whitespace and a comment
/// (Suricata's format); blank and `#` lines skipped.
fn read_hash_list(path: &Path, hex_len: usize) -> Result<Vec<Vec<u8>>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_HASH_LIST_BYTES {
        return Err(format!(
            "{} is over {MAX_HASH_LIST_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hashes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hex = line.split([' ', '\t', ',']).next().unwrap_or("");
        if hex.len() != hex_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{}:{}: not a {}-digit hex hash",
                path.display(),
                index + 1,
                hex_len
            ));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("{}:{}: bad hex", path.display(), index + 1))?;
        if hashes.len() >= MAX_HASH_LIST_ENTRIES {
            return Err(format!(
                "{} has more than {MAX_HASH_LIST_ENTRIES} hashes",
                path.display()
            ));
        }
        hashes.push(bytes);
    }
    hashes.sort();
    hashes.dedup();
    Ok(hashes)
}
