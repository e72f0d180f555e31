//! ICAP responses Weir sends (RFC 3507 4.3.3, 4.6, 4.10), as bytes. Sans-IO: the server writes
//! them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::Section;

/// What an OPTIONS answer advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsAdvert {
    /// `Methods`: the modes the requested service handles.
    pub methods: &'static str,
    pub istag: String,
    /// `Preview`: body bytes the client sends before waiting for `100 Continue`.
    pub preview_bytes: u64,
    pub max_connections: usize,
    pub options_ttl_secs: u64,
}

/// `Methods` for an ICAP service URI: a path ending in `reqmod` or `respmod` is that mode only
/// (Squid checks the service it configured is listed); any other path offers both.
pub fn methods_for_uri(uri: &str) -> &'static str {
    let path = uri
        .split(['?', '#'])
        .next()
        .unwrap_or(uri)
        .trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if last.ends_with("respmod") {
        "RESPMOD"
    } else if last.ends_with("reqmod") {
        "REQMOD"
    } else {
        "REQMOD, RESPMOD"
    }
}

/// The OPTIONS answer (RFC 3507 4.10.2). `Transfer-Preview: *` asks for a preview of every
/// file; `Allow: 204` says Weir answers `204` outside previews too.
pub fn options(advert: &OptionsAdvert) -> Vec<u8> {
    format!(
        "ICAP/1.0 200 OK\r\n\
         Methods: {}\r\n\
         Service: Weir ICAP observer\r\n\
         ISTag: \"{}\"\r\n\
         Date: {}\r\n\
         Max-Connections: {}\r\n\
         Options-TTL: {}\r\n\
         Allow: 204\r\n\
         Preview: {}\r\n\
         Transfer-Preview: *\r\n\
         Encapsulated: null-body=0\r\n\
         \r\n",
        advert.methods,
        advert.istag,
        http_date(SystemTime::now()),
        advert.max_connections,
        advert.options_ttl_secs,
        advert.preview_bytes,
    )
    .into_bytes()
}

/// `204 No Content`: use the original message unchanged.
pub fn no_content(istag: &str) -> Vec<u8> {
    format!(
        "ICAP/1.0 204 No Content\r\nISTag: \"{istag}\"\r\nDate: {}\r\nEncapsulated: null-body=0\r\n\r\n",
        http_date(SystemTime::now())
    )
    .into_bytes()
}

/// Sent after a preview without `ieof`: Weir wants the rest of the body.
pub const CONTINUE: &[u8] = b"ICAP/1.0 100 Continue\r\n\r\n";

/// An error answer; the connection is closed after it.
pub fn error(status: u16, istag: &str) -> Vec<u8> {
    format!(
        "ICAP/1.0 {status} {}\r\nISTag: \"{istag}\"\r\nDate: {}\r\nConnection: close\r\nEncapsulated: null-body=0\r\n\r\n",
        reason(status),
        http_date(SystemTime::now())
    )
    .into_bytes()
}

/// The head of a `200 OK` that echoes the encapsulated message unchanged (RFC 3507 4.6: without
/// `Allow: 204` the client needs the message back). `heads` are the HTTP heads written after it,
/// in order; `body` is the body section that follows them, chunked, or `None`.
pub fn echo_head(istag: &str, heads: &[(Section, &[u8])], body: Option<Section>) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    for (section, bytes) in heads {
        entries.push(format!("{}={offset}", section.name()));
        offset += bytes.len();
    }
    entries.push(format!(
        "{}={offset}",
        body.unwrap_or(Section::NullBody).name()
    ));
    let mut out = format!(
        "ICAP/1.0 200 OK\r\nISTag: \"{istag}\"\r\nDate: {}\r\nEncapsulated: {}\r\n\r\n",
        http_date(SystemTime::now()),
        entries.join(", ")
    )
    .into_bytes();
    for (_, bytes) in heads {
        out.extend_from_slice(bytes);
    }
    out
}

/// Appends `data` as one chunk; empty data writes nothing (an empty chunk would end the body).
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "ICAP Service Not Found",
        405 => "Method Not Allowed For Service",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        500 => "Server Error",
        501 => "Method Not Implemented",
        503 => "Service Overloaded",
        505 => "ICAP Version Not Supported",
        _ => "Error",
    }
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days);
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_date_matches_rfc_example() {
        // RFC 7231 7.1.1.1's example instant.
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn methods_follow_the_service_path() {
        assert_eq!(methods_for_uri("icap://127.0.0.1:1344/reqmod"), "REQMOD");
        assert_eq!(
            methods_for_uri("icap://127.0.0.1:1344/weir-respmod/"),
            "RESPMOD"
        );
        assert_eq!(
            methods_for_uri("icap://icap.example.net/weir"),
            "REQMOD, RESPMOD"
        );
    }

    #[test]
    fn echo_head_offsets_count_the_heads() {
        let req = b"GET / HTTP/1.1\r\n\r\n";
        let res = b"HTTP/1.1 200 OK\r\n\r\n";
        let out = echo_head(
            "t",
            &[(Section::ReqHdr, &req[..]), (Section::ResHdr, &res[..])],
            Some(Section::ResBody),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nEncapsulated: req-hdr=0, res-hdr=18, res-body=37\r\n\r\n"));
        assert!(text.ends_with("\r\n\r\nGET / HTTP/1.1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"));
        let null = String::from_utf8(echo_head("t", &[(Section::ReqHdr, &req[..])], None)).unwrap();
        assert!(null.contains("Encapsulated: req-hdr=0, null-body=18\r\n"));
    }

    #[test]
    fn chunks_are_hex_sized_and_empty_data_is_skipped() {
        let mut out = Vec::new();
        push_chunk(&mut out, &[b'x'; 26]);
        push_chunk(&mut out, b"");
        assert_eq!(&out[..4], b"1a\r\n");
        assert_eq!(out.len(), 4 + 26 + 2);
    }
}
