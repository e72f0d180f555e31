//! The DNS message format (RFC 1035 section 4), parsed from a borrowed buffer.
//!
//! The parser is lax where a sensor must be: a name longer than the RFC allows is kept (cut) and
//! flagged, record data of a type Weir does not decode is kept as its type and length, and record
//! data that does not fit its type becomes [`RData::Other`] with a noted issue. It is strict where
//! continuing would mean guessing: a message whose sections do not fit the bytes is an error.

use thiserror::Error;

/// RFC 1035 2.3.4: a name is at most 255 octets on the wire. Longer names (possible through
/// compression pointers) are cut here and flagged `truncated`.
pub const MAX_NAME_WIRE_LEN: usize = 255;

/// How many compression pointers one name may follow. Real names need one or two; a chain longer
/// than this is a loop or an attempt to make the parser spin.
pub const MAX_POINTER_JUMPS: usize = 32;

/// Records (questions included) kept from one message. Each record costs at least 5 bytes on the
/// wire, so a 64 KiB message could otherwise make the EVE record and detection buffers enormous.
pub const MAX_RECORDS_PER_MESSAGE: usize = 256;

/// The fixed header is 12 bytes (RFC 1035 4.1.1).
pub const HEADER_LEN: usize = 12;

/// A record type. An open set: types Weir does not know keep their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RrType(pub u16);

impl RrType {
    pub const A: RrType = RrType(1);
    pub const NS: RrType = RrType(2);
    pub const CNAME: RrType = RrType(5);
    pub const SOA: RrType = RrType(6);
    pub const NULL: RrType = RrType(10);
    pub const PTR: RrType = RrType(12);
    pub const MX: RrType = RrType(15);
    pub const TXT: RrType = RrType(16);
    pub const AAAA: RrType = RrType(28);
    pub const SRV: RrType = RrType(33);
    pub const OPT: RrType = RrType(41);

    /// The mnemonic EVE writes, or `None` for a type without one (EVE then writes the number).
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "A",
            2 => "NS",
            3 => "MD",
            4 => "MF",
            5 => "CNAME",
            6 => "SOA",
            7 => "MB",
            8 => "MG",
            9 => "MR",
            10 => "NULL",
            11 => "WKS",
            12 => "PTR",
            13 => "HINFO",
            14 => "MINFO",
            15 => "MX",
            16 => "TXT",
            17 => "RP",
            18 => "AFSDB",
            19 => "X25",
            20 => "ISDN",
            21 => "RT",
            22 => "NSAP",
            23 => "NSAPPTR",
            24 => "SIG",
            25 => "KEY",
            26 => "PX",
            27 => "GPOS",
            28 => "AAAA",
            29 => "LOC",
            30 => "NXT",
            33 => "SRV",
            34 => "ATMA",
            35 => "NAPTR",
            36 => "KX",
            37 => "CERT",
            38 => "A6",
            39 => "DNAME",
            41 => "OPT",
            42 => "APL",
            43 => "DS",
            44 => "SSHFP",
            45 => "IPSECKEY",
            46 => "RRSIG",
            47 => "NSEC",
            48 => "DNSKEY",
            49 => "DHCID",
            50 => "NSEC3",
            51 => "NSEC3PARAM",
            52 => "TLSA",
            55 => "HIP",
            59 => "CDS",
            60 => "CDNSKEY",
            65 => "HTTPS",
            99 => "SPF",
            249 => "TKEY",
            250 => "TSIG",
            254 => "MAILA",
            255 => "ANY",
            256 => "URI",
            _ => return None,
        })
    }

    /// The EVE `rrtype` value: the mnemonic, else the decimal number.
    pub fn eve(self) -> String {
        match self.mnemonic() {
            Some(m) => m.to_string(),
            None => self.0.to_string(),
        }
    }
}

/// The EVE `rcode` spelling of the 4-bit header RCODE (RFC 1035, RFC 2136).
pub fn rcode_eve(rcode: u8) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        other => return other.to_string(),
    };
    name.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(msg: &[u8]) -> Option<Header> {
        let field = |i: usize| Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]));
        Some(Header {
            id: field(0)?,
            flags: field(2)?,
            qdcount: field(4)?,
            ancount: field(6)?,
            nscount: field(8)?,
            arcount: field(10)?,
        })
    }

    /// QR: set in responses.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

/// A domain name as the labels' bytes joined by `.`, exactly as on the wire (case kept, bytes
/// that are not printable kept raw; escaping is the EVE writer's job).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    pub bytes: Vec<u8>,
    /// The name was longer than [`MAX_NAME_WIRE_LEN`]; `bytes` holds its beginning.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub rrtype: RrType,
    pub rrclass: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

/// One EDNS(0) option of an OPT record (RFC 6891 6.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnsOption {
    pub code: u16,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A([u8; 4]),
    Aaaa([u8; 16]),
    Cname(Name),
    Ns(Name),
    Ptr(Name),
    Mx { preference: u16, exchange: Name },
    Soa(Soa),
    Srv(Srv),
    /// The character-strings of a TXT record, in order.
    Txt(Vec<Vec<u8>>),
    Opt(Vec<EdnsOption>),
    /// A type Weir does not decode, or data that did not fit its type: kept as its length.
    Other { len: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rrtype: RrType,
    pub rrclass: u16,
    pub ttl: u32,
    pub data: RData,
}

/// Something odd about a message that did not stop it from parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Issue {
    /// A name was longer than [`MAX_NAME_WIRE_LEN`].
    NameTooLong,
    /// Record data did not fit its type (e.g. an A record of 5 bytes).
    BadRdata,
    /// More than [`MAX_RECORDS_PER_MESSAGE`] records; the rest were not read.
    TooManyRecords,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Each kind at most once, in the order first seen.
    pub issues: Vec<Issue>,
}

/// Why a message could not be parsed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("DNS message ends inside the {0}")]
    Truncated(&'static str),
    #[error("DNS name uses more than {MAX_POINTER_JUMPS} compression pointers (a loop)")]
    PointerLoop,
    #[error("DNS compression pointer to offset {0} is outside the message")]
    PointerOutOfRange(usize),
    #[error("DNS label length byte {0:#04x} is not a label of at most 63 bytes nor a pointer")]
    BadLabel(u8),
}

impl WireError {
    /// The app-layer anomaly name for this error.
    pub fn anomaly_event(self) -> &'static str {
        match self {
            WireError::Truncated(_) | WireError::PointerOutOfRange(_) => "dns.malformed_data",
            WireError::PointerLoop => "dns.infinite_loop",
            WireError::BadLabel(_) => "dns.label_too_long",
        }
    }
}

/// Reads the name starting at `start` in `msg`. Returns it and the offset just past the name at
/// its original position (after the first pointer, if any).
pub fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
    let mut name = Name::default();
    let mut pos = start;
    let mut resume_at = None;
    let mut jumps = 0;
    let mut wire_len = 1; // the root label's length byte
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated("name"))?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = resume_at.unwrap_or(pos + 1);
                return Ok((name, end));
            }
            0x00 => {
                let len = usize::from(len);
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(WireError::Truncated("name"))?;
                wire_len += 1 + len;
                if wire_len > MAX_NAME_WIRE_LEN {
                    name.truncated = true;
                } else {
                    if !name.bytes.is_empty() {
                        name.bytes.push(b'.');
                    }
                    name.bytes.extend_from_slice(label);
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(WireError::Truncated("name"))?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if resume_at.is_none() {
                    resume_at = Some(pos + 2);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(WireError::PointerLoop);
                }
                if target >= msg.len() {
                    return Err(WireError::PointerOutOfRange(target));
                }
                pos = target;
            }
            // 0x40 and 0x80: lengths 64..=191, which RFC 1035 does not allow (and the extended
            // label types of RFC 6891 are deprecated).
            _ => return Err(WireError::BadLabel(len)),
        }
    }
}

struct Cursor<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.msg.get(self.pos..self.pos + 2).ok_or(WireError::Truncated(what))?;
        self.pos += 2;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.msg.get(self.pos..self.pos + 4).ok_or(WireError::Truncated(what))?;
        self.pos += 4;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<Name, WireError> {
        let (name, next) = read_name(self.msg, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Parses one whole DNS message (for TCP, without its 2-byte length prefix).
pub fn parse_message(msg: &[u8]) -> Result<Message, WireError> {
    let header = Header::parse(msg).ok_or(WireError::Truncated("header"))?;
    let mut cur = Cursor { msg, pos: HEADER_LEN };
    let mut issues = Vec::new();
    let note = |issues: &mut Vec<Issue>, issue| {
        if !issues.contains(&issue) {
            issues.push(issue);
        }
    };
    let mut budget = MAX_RECORDS_PER_MESSAGE;

    let mut questions = Vec::new();
    for _ in 0..header.qdcount {
        if budget == 0 {
            note(&mut issues, Issue::TooManyRecords);
            break;
        }
        budget -= 1;
        let name = cur.name()?;
        if name.truncated {
            note(&mut issues, Issue::NameTooLong);
        }
        let rrtype = RrType(cur.u16("question")?);
        let rrclass = cur.u16("question")?;
        questions.push(Question { name, rrtype, rrclass });
    }

    let mut sections: [Vec<Record>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let counts = [header.ancount, header.nscount, header.arcount];
    'sections: for (section, count) in sections.iter_mut().zip(counts) {
        for _ in 0..count {
            if budget == 0 {
                note(&mut issues, Issue::TooManyRecords);
                break 'sections;
            }
            budget -= 1;
            let record = read_record(&mut cur, &mut |i| note(&mut issues, i))?;
            section.push(record);
        }
    }
    let [answers, authorities, additionals] = sections;
    Ok(Message { header, questions, answers, authorities, additionals, issues })
}

fn read_record(cur: &mut Cursor<'_>, note: &mut dyn FnMut(Issue)) -> Result<Record, WireError> {
    let name = cur.name()?;
    if name.truncated {
        note(Issue::NameTooLong);
    }
    let rrtype = RrType(cur.u16("record")?);
    let rrclass = cur.u16("record")?;
    let ttl = cur.u32("record")?;
    let rdlength = cur.u16("record")?;
    let start = cur.pos;
    let end = start + usize::from(rdlength);
    let rdata = cur.msg.get(start..end).ok_or(WireError::Truncated("record data"))?;
    let data = match read_rdata(cur.msg, start, rdata, rdlength, rrtype) {
        Some(data) => data,
        None => {
            note(Issue::BadRdata);
            RData::Other { len: rdlength }
        }
    };
    for n in rdata_names(&data) {
        if n.truncated {
            note(Issue::NameTooLong);
        }
    }
    cur.pos = end;
    Ok(Record { name, rrtype, rrclass, ttl, data })
}

fn rdata_names(data: &RData) -> Vec<&Name> {
    match data {
        RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => vec![n],
        RData::Mx { exchange, .. } => vec![exchange],
        RData::Soa(soa) => vec![&soa.mname, &soa.rname],
        RData::Srv(srv) => vec![&srv.target],
        _ => Vec::new(),
    }
}

/// Decodes record data, or `None` when it does not fit its type. Names inside record data may
/// point anywhere earlier in the message, so they are read from `msg` at `start`, and must end
/// inside the record data.
fn read_rdata(msg: &[u8], start: usize, rdata: &[u8], rdlength: u16, rrtype: RrType) -> Option<RData> {
    let end = start + rdata.len();
    let name_at = |pos: usize| -> Option<(Name, usize)> {
        let (name, next) = read_name(msg, pos).ok()?;
        (next <= end).then_some((name, next))
    };
    let u16_at = |pos: usize| -> Option<u16> {
        let b = msg.get(pos..pos + 2)?;
        (pos + 2 <= end).then(|| u16::from_be_bytes([b[0], b[1]]))
    };
    let u32_at = |pos: usize| -> Option<u32> {
        let b = msg.get(pos..pos + 4)?;
        (pos + 4 <= end).then(|| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some(match rrtype {
        RrType::A => RData::A(rdata.try_into().ok()?),
        RrType::AAAA => RData::Aaaa(rdata.try_into().ok()?),
        RrType::CNAME => RData::Cname(name_at(start)?.0),
        RrType::NS => RData::Ns(name_at(start)?.0),
        RrType::PTR => RData::Ptr(name_at(start)?.0),
        RrType::MX => {
            let preference = u16_at(start)?;
            RData::Mx { preference, exchange: name_at(start + 2)?.0 }
        }
        RrType::SOA => {
            let (mname, next) = name_at(start)?;
            let (rname, next) = name_at(next)?;
            RData::Soa(Soa {
                mname,
                rname,
                serial: u32_at(next)?,
                refresh: u32_at(next + 4)?,
                retry: u32_at(next + 8)?,
                expire: u32_at(next + 12)?,
                minimum: u32_at(next + 16)?,
            })
        }
        RrType::SRV => RData::Srv(Srv {
            priority: u16_at(start)?,
            weight: u16_at(start + 2)?,
            port: u16_at(start + 4)?,
            target: name_at(start + 6)?.0,
        }),
        RrType::TXT => {
            let mut strings = Vec::new();
            let mut rest = rdata;
            while let Some((&len, tail)) = rest.split_first() {
                let s = tail.get(..usize::from(len))?;
                strings.push(s.to_vec());
                rest = &tail[usize::from(len)..];
            }
            RData::Txt(strings)
        }
        RrType::OPT => {
            let mut options = Vec::new();
            let mut rest = rdata;
            while !rest.is_empty() {
                let head = rest.get(..4)?;
                let code = u16::from_be_bytes([head[0], head[1]]);
                let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                let data = rest.get(4..4 + len)?;
                options.push(EdnsOption { code, data: data.to_vec() });
                rest = &rest[4 + len..];
            }
            RData::Opt(options)
        }
        _ => RData::Other { len: rdlength },
    })
}
