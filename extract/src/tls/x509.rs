//! A minimal DER walk over an X.509 certificate (RFC 5280 4.1): only what EVE and detection
//! read (subject, issuer, serial, validity, subject alternative names, SHA-1 fingerprint).
//! Strings are written the way Suricata writes them (through x509-parser's name formatting:
//! `C=US, O=Org, CN=host`, non-string values as upper-case hex), so EVE consumers see the same
//! values.

use sha1::{Digest, Sha1};

/// What Weir keeps of one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// `C=US, O=Google Trust Services LLC, CN=GTS CA 1C3`.
    pub subject: String,
    pub issuer: String,
    /// Upper-case hex bytes of the serial number's encoding, colon separated (`00:BB:2A:...`).
    pub serial: String,
    /// `2022-07-18T08:25:34` (UTC, as Suricata writes it).
    pub not_before: String,
    pub not_after: String,
    /// DNS names and IP addresses from the subjectAltName extension.
    pub subject_alt_names: Vec<String>,
    /// SHA-1 of the DER, lower-case hex, colon separated.
    pub fingerprint: String,
}

/// One DER element: its tag, its content, and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags never occur in the parts read here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // DER forbids the indefinite form (0x80); more than 4 length bytes is not a certificate.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    let content = rest.get(..len)?;
    Some((tag, content, &rest[len..]))
}

/// The next element, which must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match der(input)? {
        (t, content, rest) if t == tag => Some((content, rest)),
        _ => None,
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Parses a DER certificate, or `None` when its structure is not a certificate.
pub fn parse(cert: &[u8]) -> Option<CertInfo> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((0xa0, _, after)) = der(rest) {
        rest = after; // [0] EXPLICIT version
    }
    let (serial, rest) = expect(rest, INTEGER)?;
    let (_signature_alg, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, rest) = expect(rest, SEQUENCE)?;
    let (_spki, mut rest) = expect(rest, SEQUENCE)?;
    let (not_before, validity_rest) = time(validity)?;
    let (not_after, _) = time(validity_rest)?;

    let mut subject_alt_names = Vec::new();
    while let Some((tag, content, after)) = der(rest) {
        rest = after;
        if tag == 0xa3 {
            subject_alt_names = extensions_san(content).unwrap_or_default();
        }
    }

    Some(CertInfo {
        subject: name_string(subject)?,
        issuer: name_string(issuer)?,
        serial: serial.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"),
        not_before,
        not_after,
        subject_alt_names,
        fingerprint: colon_hex_lower(&Sha1::digest(cert)),
    })
}

pub(crate) fn colon_hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn time(input: &[u8]) -> Option<(String, &[u8])> {
    let (tag, content, rest) = der(input)?;
    let text = std::str::from_utf8(content).ok()?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (year, tail) = match tag {
        UTC_TIME => {
            let yy: u32 = text.get(..2).filter(|s| digits(s))?.parse().ok()?;
            // RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (text.get(..4).filter(|s| digits(s))?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| tail.get(i..i + 2).filter(|s| digits(s));
    let (month, day, hour, minute) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let second = field(8).unwrap_or("00");
    Some((format!("{year:04}-{month}-{day}T{hour}:{minute}:{second}"), rest))
}

fn oid_arcs(content: &[u8]) -> Option<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in content.iter().enumerate() {
        value = value.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    (!arcs.is_empty()).then_some(arcs)
}

fn oid_dotted(content: &[u8]) -> String {
    match oid_arcs(content) {
        Some(arcs) => arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        None => crate::dns::escape_bytes(content),
    }
}

/// The attribute names x509-parser (and so Suricata) writes; others appear as `OID(a.b.c)`.
fn attribute_abbrev(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "Email",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serialNumber",
        "2.5.4.9" => "streetAddress",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "givenName",
        _ => return None,
    })
}

fn attribute_value(tag: u8, content: &[u8]) -> String {
    // The ASN.1 string types (UTF8, Numeric, Printable, T61, Videotex, IA5, Graphic, Visible,
    // General, BMP) and ObjectDescriptor are written as text; anything else as upper-case hex.
    if matches!(tag, 0x07 | 0x0c | 0x12 | 0x13 | 0x14 | 0x15 | 0x16 | 0x19 | 0x1a | 0x1b | 0x1e) {
        match std::str::from_utf8(content) {
            Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
            _ => crate::dns::escape_bytes(content),
        }
    } else {
        content.iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// `Name ::= SEQUENCE OF RelativeDistinguishedName` as `A=v, B=w + C=x`.
fn name_string(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, SET)?;
        rdns = rest;
        let mut attrs = Vec::new();
        let mut set_rest = set;
        while !set_rest.is_empty() {
            let (atv, after) = expect(set_rest, SEQUENCE)?;
            set_rest = after;
            let (oid, value) = expect(atv, OID)?;
            let (tag, content, _) = der(value)?;
            let dotted = oid_dotted(oid);
            let key = match attribute_abbrev(&dotted) {
                Some(abbrev) => abbrev.to_string(),
                None => format!("OID({dotted})"),
            };
            attrs.push(format!("{key}={}", attribute_value(tag, content)));
        }
        parts.push(attrs.join(" + "));
    }
    Some(parts.join(", "))
}

/// subjectAltName (2.5.29.17) DNS names and IP addresses from the `[3]` extensions.
fn extensions_san(explicit: &[u8]) -> Option<Vec<String>> {
    let (mut list, _) = expect(explicit, SEQUENCE)?;
    while !list.is_empty() {
        let (ext, rest) = expect(list, SEQUENCE)?;
        list = rest;
        let (oid, mut body) = expect(ext, OID)?;
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        if let Some((BOOLEAN, _, after)) = der(body) {
            body = after;
        }
        let (value, _) = expect(body, OCTET_STRING)?;
        let (mut names, _) = expect(value, SEQUENCE)?;
        let mut out = Vec::new();
        while let Some((tag, content, rest)) = der(names) {
            names = rest;
            match tag {
                0x82 => out.push(crate::dns::escape_bytes(content)),
                0x87 if content.len() == 4 => {
                    out.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(content).ok()?).to_string())
                }
                0x87 if content.len() == 16 => {
                    out.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(content).ok()?).to_string())
                }
                _ => {}
            }
        }
        return Some(out);
    }
    Some(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_long_and_bad() {
        assert_eq!(der(&[0x02, 0x01, 0x05, 0xff]), Some((0x02, &[0x05][..], &[0xff][..])));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend_from_slice(&[7; 0x80]);
        assert_eq!(der(&long).map(|(_, c, _)| c.len()), Some(0x80));
        assert_eq!(der(&[0x04, 0x80, 0x00]), None, "indefinite length");
        assert_eq!(der(&[0x04, 0x85, 1, 1, 1, 1, 1]), None, "5 length bytes");
        assert_eq!(der(&[0x04, 0x82, 0xff, 0xff, 0x00]), None, "longer than the input");
    }

    #[test]
    fn oids_and_times() {
        assert_eq!(oid_dotted(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(oid_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
        let utc = b"\x17\x0d220718082534Z";
        assert_eq!(time(utc).map(|t| t.0), Some("2022-07-18T08:25:34".to_string()));
        let old = b"\x17\x0d991231235959Z";
        assert_eq!(time(old).map(|t| t.0), Some("1999-12-31T23:59:59".to_string()));
        let generalized = b"\x18\x0f20500101000000Z";
        assert_eq!(time(generalized).map(|t| t.0), Some("2050-01-01T00:00:00".to_string()));
        assert_eq!(time(b"\x17\x0d22x718082534Z"), None);
    }

    #[test]
    fn names_join_rdns_and_multivalued_rdns() {
        // SEQUENCE { SET { C=US }, SET { O=Org + OU=Unit } , SET { 1.2.3.4 = INTEGER 5 } }
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S', // C=US
            0x31, 0x19, // SET of two
            0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x03, b'O', b'r', b'g', // O=Org (UTF8)
            0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0b, 0x13, 0x04, b'U', b'n', b'i', b't', // OU=Unit
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x02, 0x01, 0x05, // 1.2.3.4=5
        ];
        assert_eq!(name_string(&name).as_deref(), Some("C=US, O=Org + OU=Unit, OID(1.2.3.4)=05"));
    }
}
