//! A line splitter shared by the mail protocols: bounded, and tolerant of bare LF.

/// What [`LineBuf::next_line`] found.
pub(crate) enum Line {
    /// A complete line, terminator stripped.
    Complete(Vec<u8>),
    /// A line passed the limit; its bytes up to the end of the line are dropped.
    TooLong,
    /// No complete line in the input yet (what there was is held).
    Partial,
}

/// Splits a byte stream into lines, holding at most `limit` bytes of an unfinished line.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    held: Vec<u8>,
    /// The current line passed the limit: skip to its end.
    skipping: bool,
}

impl LineBuf {
    /// Takes the next line from `data` (advancing it).
    pub(crate) fn next_line(&mut self, data: &mut &[u8], limit: usize) -> Line {
        loop {
            match data.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let (part, rest) = data.split_at(nl + 1);
                    *data = rest;
                    if self.skipping {
                        self.skipping = false;
                        continue;
                    }
                    if self.held.len() + part.len() > limit.saturating_add(2) {
                        self.held.clear();
                        return Line::TooLong;
                    }
                    let mut line = std::mem::take(&mut self.held);
                    line.extend_from_slice(part);
                    let content_len = super::headers::strip_eol(&line).len();
                    line.truncate(content_len);
                    return Line::Complete(line);
                }
                None => {
                    let part = std::mem::take(data);
                    if self.skipping {
                        return Line::Partial;
                    }
                    if self.held.len() + part.len() > limit.saturating_add(2) {
                        self.held.clear();
                        self.skipping = true;
                        return Line::TooLong;
                    }
                    self.held.extend_from_slice(part);
                    return Line::Partial;
                }
            }
        }
    }

    /// Forgets any unfinished line (after a gap).
    pub(crate) fn reset(&mut self) {
        self.held.clear();
        self.skipping = false;
    }
}

/// A dot-stuffed multi-line body (SMTP DATA, POP3 RETR/TOP): removes the leading dot of
/// stuffed lines and finds the terminating `.` line. Bytes pass straight through, so a body
/// of any length needs no more than three bytes of state.
#[derive(Debug)]
pub(crate) struct DotUnstuffer {
    at_line_start: bool,
    /// A line start whose first bytes (`.`, `.\r`) are not yet decided.
    pending: Vec<u8>,
}

impl Default for DotUnstuffer {
    fn default() -> Self {
        DotUnstuffer { at_line_start: true, pending: Vec::new() }
    }
}

impl DotUnstuffer {
    /// Feeds body bytes; unstuffed content goes to `sink`. Returns how many bytes of `data`
    /// were consumed when the terminator was found (the rest belongs to what follows), or None
    /// when all of `data` was body.
    pub(crate) fn feed(&mut self, data: &[u8], sink: &mut dyn FnMut(&[u8])) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            if self.at_line_start {
                self.pending.push(data[i]);
                i += 1;
                match self.pending.as_slice() {
                    b"." | b".\r" => continue,
                    b".\n" | b".\r\n" => {
                        self.pending.clear();
                        return Some(i);
                    }
                    [b'.', rest @ ..] => {
                        // A stuffed line: drop the dot, keep the rest.
                        let rest = rest.to_vec();
                        self.pending.clear();
                        self.at_line_start = rest.ends_with(b"\n");
                        sink(&rest);
                    }
                    other => {
                        let other = other.to_vec();
                        self.pending.clear();
                        self.at_line_start = other.ends_with(b"\n");
                        sink(&other);
                    }
                }
                continue;
            }
            match data[i..].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    sink(&data[i..i + nl + 1]);
                    i += nl + 1;
                    self.at_line_start = true;
                }
                None => {
                    sink(&data[i..]);
                    i = data.len();
                }
            }
        }
        None
    }

    /// After a gap the position in the line is unknown; assume mid-line so a stray dot is
    /// not taken as the end.
    pub(crate) fn gap(&mut self) {
        self.pending.clear();
        self.at_line_start = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff(chunks: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut u = DotUnstuffer::default();
        let mut body = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            if let Some(used) = u.feed(c, &mut |b| body.extend_from_slice(b)) {
                let mut rest = c[used..].to_vec();
                for later in &chunks[n + 1..] {
                    rest.extend_from_slice(later);
                }
                return (body, Some(rest));
            }
        }
        (body, None)
    }

    #[test]
    fn dot_stuffing_is_undone_across_any_split() {
        let wire: &[u8] = b"a\r\n..b\r\n\r\n...\r\n.\r\nQUIT\r\n";
        let want_body: &[u8] = b"a\r\n.b\r\n\r\n..\r\n";
        for cut in 0..wire.len() {
            let (body, rest) = unstuff(&[&wire[..cut], &wire[cut..]]);
            assert_eq!(body, want_body, "cut at {cut}");
            assert_eq!(rest.as_deref(), Some(&b"QUIT\r\n"[..]), "cut at {cut}");
        }
    }

    #[test]
    fn lines_are_bounded() {
        let mut lb = LineBuf::default();
        let mut data: &[u8] = b"short\r\n";
        assert!(matches!(lb.next_line(&mut data, 8), Line::Complete(l) if l == b"short"));
        let long = vec![b'x'; 100];
        let mut data: &[u8] = &long;
        assert!(matches!(lb.next_line(&mut data, 8), Line::TooLong));
        let mut data: &[u8] = b"xxxx\r\nok\n";
        assert!(matches!(lb.next_line(&mut data, 8), Line::Complete(l) if l == b"ok"));
    }
}
