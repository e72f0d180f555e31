//! Streaming multipart/form-data splitting (RFC 7578 over RFC 2046), so each uploaded part can
//! become a file without holding the body.

/// Most bytes of one part's header block; beyond it the part's headers are skipped.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

/// Longest boundary RFC 2046 section 5.1.1 allows.
const MAX_BOUNDARY_BYTES: usize = 70;

/// What the splitter found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PartEvent<'a> {
    /// A part begins; its filename from Content-Disposition, when it has one.
    Start { filename: Option<Vec<u8>> },
    Data(&'a [u8]),
    /// The part ended at its delimiter (`complete`) or the body ended first.
    End { complete: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the first delimiter (the preamble) or between a part's end and the next.
    Preamble,
    /// After a delimiter: `--` closes the body, otherwise the line ends and headers follow.
    AfterDelimiter,
    Headers,
    Body,
    /// After the close delimiter (the epilogue).
    Done,
}

enum Delimiter {
    At(usize),
    /// A delimiter may start here; more bytes decide.
    Undecided(usize),
    Absent,
}

/// Splits a multipart body given its boundary.
pub(crate) struct Multipart {
    /// `\r\n--boundary`: the delimiter as it appears before every part but the first.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    phase: Phase,
    in_part: bool,
}

/// The boundary parameter of a multipart Content-Type, when the type is multipart/form-data.
pub(crate) fn form_data_boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_ascii_start().starts_with(b"multipart/form-data") {
        return None;
    }
    let value = param(content_type, b"boundary")?;
    (!value.is_empty() && value.len() <= MAX_BOUNDARY_BYTES).then_some(value)
}

/// A `name=value` or `name="value"` parameter of a header value (case-insensitive name).
pub(crate) fn param(header_value: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    for piece in header_value.split(|&b| b == b';').skip(1) {
        let piece = piece.trim_ascii();
        let Some(eq) = piece.iter().position(|&b| b == b'=') else { continue };
        if !piece[..eq].trim_ascii().eq_ignore_ascii_case(name) {
            continue;
        }
        let v = piece[eq + 1..].trim_ascii();
        let v = if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' { &v[1..v.len() - 1] } else { v };
        return Some(v.to_vec());
    }
    None
}

/// The filename a Content-Disposition value names: `filename*=charset''pct-encoded` (RFC 6266)
/// wins over `filename=`, as browsers do.
pub(crate) fn disposition_filename(value: &[u8]) -> Option<Vec<u8>> {
    if let Some(ext) = param(value, b"filename*") {
        let encoded = match ext.windows(2).position(|w| w == b"''") {
            Some(p) => &ext[p + 2..],
            None => &ext[..],
        };
        return Some(pct_decode(encoded));
    }
    param(value, b"filename")
}

fn pct_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let Some(byte) = s.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Multipart {
    pub(crate) fn new(boundary: &[u8]) -> Multipart {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        // The first delimiter may open the body without a preceding line break.
        Multipart { delimiter, buf: b"\r\n".to_vec(), phase: Phase::Preamble, in_part: false }
    }

    /// A delimiter counts only when followed by `--`, whitespace or a line break (RFC 2046
    /// section 5.1.1): `--boundaryX` inside a part is data.
    fn find_delimiter(&self, hay: &[u8]) -> Delimiter {
        let mut from = 0;
        while let Some(rel) = find(&hay[from..], &self.delimiter) {
            let at = from + rel;
            let after = &hay[at + self.delimiter.len()..];
            match after {
                [] | [b'-'] => return Delimiter::Undecided(at),
                [b'-', b'-', ..] | [b'\r' | b'\n' | b' ' | b'\t', ..] => return Delimiter::At(at),
                _ => from = at + 1,
            }
        }
        Delimiter::Absent
    }

    pub(crate) fn feed(&mut self, data: &[u8], on: &mut dyn FnMut(PartEvent<'_>)) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            match self.phase {
                Phase::Preamble | Phase::Body => match self.find_delimiter(rest) {
                    Delimiter::At(at) => {
                        if self.phase == Phase::Body {
                            on(PartEvent::Data(&rest[..at]));
                            on(PartEvent::End { complete: true });
                            self.in_part = false;
                        }
                        pos += at + self.delimiter.len();
                        self.phase = Phase::AfterDelimiter;
                    }
                    Delimiter::Undecided(at) => {
                        if self.phase == Phase::Body {
                            on(PartEvent::Data(&rest[..at]));
                        }
                        pos += at;
                        break;
                    }
                    Delimiter::Absent => {
                        // Keep a tail that could be the start of a delimiter.
                        let keep = self.delimiter.len() - 1;
                        let safe = rest.len().saturating_sub(keep);
                        if self.phase == Phase::Body {
                            on(PartEvent::Data(&rest[..safe]));
                        }
                        pos += safe;
                        break;
                    }
                },
                Phase::AfterDelimiter => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.phase = Phase::Done;
                        continue;
                    }
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            pos += nl + 1;
                            self.phase = Phase::Headers;
                        }
                        None if rest.len() > MAX_PART_HEADER_BYTES => {
                            pos += rest.len();
                        }
                        None => break,
                    }
                }
                Phase::Headers => {
                    let end = find(rest, b"\r\n\r\n").map(|p| (p, 4)).or_else(|| find(rest, b"\n\n").map(|p| (p, 2)));
                    // An empty header block: the part body starts right away.
                    let end = if rest.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else if rest.starts_with(b"\n") {
                        Some((0, 1))
                    } else {
                        end
                    };
                    match end {
                        Some((at, len)) => {
                            let filename = part_filename(&rest[..at]);
                            on(PartEvent::Start { filename });
                            self.in_part = true;
                            pos += at + len;
                            self.phase = Phase::Body;
                        }
                        None if rest.len() > MAX_PART_HEADER_BYTES => {
                            on(PartEvent::Start { filename: None });
                            self.in_part = true;
                            self.phase = Phase::Body;
                        }
                        None => break,
                    }
                }
                Phase::Done => {
                    pos = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..pos);
    }

    /// The body ended: a part still open is reported incomplete, after its held-back tail.
    pub(crate) fn finish(&mut self, on: &mut dyn FnMut(PartEvent<'_>)) {
        if self.in_part {
            on(PartEvent::Data(&self.buf));
            on(PartEvent::End { complete: false });
            self.in_part = false;
        }
        self.buf.clear();
        self.phase = Phase::Done;
    }
}

fn part_filename(headers: &[u8]) -> Option<Vec<u8>> {
    for line in headers.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if line[..colon].trim_ascii().eq_ignore_ascii_case(b"content-disposition") {
            return disposition_filename(&line[colon + 1..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &[u8], piece: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>, bool)> {
        let mut m = Multipart::new(b"XyZ");
        let mut parts: Vec<(Option<Vec<u8>>, Vec<u8>, bool)> = Vec::new();
        let mut on = |e: PartEvent<'_>| match e {
            PartEvent::Start { filename } => parts.push((filename, Vec::new(), false)),
            PartEvent::Data(d) => parts.last_mut().expect("part").1.extend_from_slice(d),
            PartEvent::End { complete } => parts.last_mut().expect("part").2 = complete,
        };
        for p in body.chunks(piece) {
            m.feed(p, &mut on);
        }
        m.finish(&mut on);
        parts
    }

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"t.txt\"\r\nContent-Type: text/plain\r\n\r\n\
line1\r\n--XyZnot-a-delimiter\r\n--XyZ--\r\nepilogue";

    #[test]
    fn parts_split_identically_at_any_piece_size() {
        for piece in [1, 3, 16, 1000] {
            let parts = split(BODY, piece);
            assert_eq!(parts.len(), 2, "piece {piece}");
            assert_eq!(parts[0], (None, b"value".to_vec(), true));
            assert_eq!(parts[1], (Some(b"t.txt".to_vec()), b"line1\r\n--XyZnot-a-delimiter".to_vec(), true));
        }
    }

    #[test]
    fn a_cut_body_ends_the_part_incomplete() {
        let parts = split(&BODY[..BODY.len() - 30], 5);
        assert!(!parts[1].2);
        assert_eq!(parts[1].1, b"line1\r\n--XyZnot-".to_vec());
    }

    #[test]
    fn boundary_and_filename_parameters() {
        assert_eq!(form_data_boundary(b"multipart/form-data; boundary=\"ab cd\""), Some(b"ab cd".to_vec()));
        assert_eq!(form_data_boundary(b"text/plain; boundary=x"), None);
        assert_eq!(disposition_filename(b"attachment; filename=\"a.exe\"; filename*=UTF-8''b%20c.exe"), Some(b"b c.exe".to_vec()));
        assert_eq!(disposition_filename(b"attachment; filename=plain.bin"), Some(b"plain.bin".to_vec()));
    }
}
