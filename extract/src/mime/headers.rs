//! The top-level header block read the way Suricata logs it: raw values, unfolded and trimmed,
//! not decoded, so EVE fields match Suricata's byte for byte.

/// Header fields kept from one header block; later ones are ignored (and the block is flagged).
pub const MAX_HEADER_FIELDS: usize = 256;

/// Longest header value kept; longer values are cut (an endless header line stays bounded).
pub const MAX_HEADER_VALUE_BYTES: usize = 16 * 1024;

/// One header field with its value unfolded (line breaks of continuation lines removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawHeader {
    pub name: String,
    pub value: Vec<u8>,
}

/// The parsed header block of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    pub fields: Vec<RawHeader>,
    /// Where the body starts (after the empty line), or None when the block never ended.
    pub body_offset: Option<usize>,
    /// Fields or values were dropped or cut by the limits above.
    pub clipped: bool,
}

impl HeaderBlock {
    /// The first value of a field, by case-insensitive name.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
    }
}

/// Reads the header block at the start of `msg`.
pub fn parse_header_block(msg: &[u8]) -> HeaderBlock {
    let mut block = HeaderBlock::default();
    let mut pos = 0;
    let mut current: Option<RawHeader> = None;
    while pos < msg.len() {
        let end = msg[pos..].iter().position(|&b| b == b'\n').map_or(msg.len(), |n| pos + n + 1);
        let line = &msg[pos..end];
        let content = strip_eol(line);
        pos = end;
        if content.is_empty() {
            block.body_offset = Some(pos);
            break;
        }
        if matches!(content[0], b' ' | b'\t') {
            if let Some(h) = current.as_mut() {
                append_capped(&mut h.value, content, &mut block.clipped);
            }
            continue;
        }
        if let Some(h) = current.take() {
            push_field(&mut block, h);
        }
        // A line without a colon is not a field: mail clients skip it rather than end the block.
        if let Some(colon) = content.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(content[..colon].trim_ascii()).into_owned();
            let mut value = Vec::new();
            append_capped(&mut value, &content[colon + 1..], &mut block.clipped);
            current = Some(RawHeader { name, value });
        }
    }
    if let Some(h) = current.take() {
        push_field(&mut block, h);
    }
    for h in &mut block.fields {
        let trimmed = h.value.trim_ascii().to_vec();
        h.value = trimmed;
    }
    block
}

fn push_field(block: &mut HeaderBlock, h: RawHeader) {
    if block.fields.len() < MAX_HEADER_FIELDS {
        block.fields.push(h);
    } else {
        block.clipped = true;
    }
}

fn append_capped(value: &mut Vec<u8>, more: &[u8], clipped: &mut bool) {
    let room = MAX_HEADER_VALUE_BYTES.saturating_sub(value.len());
    if more.len() > room {
        *clipped = true;
    }
    value.extend_from_slice(&more[..room.min(more.len())]);
}

pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// Splits an address list on the commas that separate addresses: not those inside quotes,
/// angle brackets or comments. Items are trimmed; empty ones are dropped.
pub fn split_addresses(value: &[u8]) -> Vec<String> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut angle = 0u32;
    let mut paren = 0u32;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => angle += 1,
            b'>' if !in_quote => angle = angle.saturating_sub(1),
            b'(' if !in_quote => paren += 1,
            b')' if !in_quote => paren = paren.saturating_sub(1),
            b',' if !in_quote && angle == 0 && paren == 0 => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
        .into_iter()
        .map(|s| s.trim_ascii())
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The bare address of a mailbox (`"Name" <a@b>` -> `a@b`), for artifacts.
pub fn bare_address(mailbox: &str) -> String {
    let addr = match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => &mailbox[open + 1..close],
        _ => mailbox,
    };
    addr.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_values_are_unfolded_and_trimmed() {
        let msg = b"Subject: one\r\n two\r\nTo: \r\nCc: \"jam,abrakadabra.ch\" <mirjam@abrakadabra.ch>\r\n\r\nbody";
        let block = parse_header_block(msg);
        assert_eq!(block.first("subject"), Some(&b"one two"[..]));
        assert_eq!(block.first("TO"), Some(&b""[..]));
        assert_eq!(block.body_offset, Some(msg.len() - 4));
        let cc = split_addresses(block.first("cc").expect("cc"));
        assert_eq!(cc, ["\"jam,abrakadabra.ch\" <mirjam@abrakadabra.ch>"]);
    }

    #[test]
    fn address_lists_split_outside_quotes_brackets_and_comments() {
        let v = b"a@b, \"x, y\" <c@d>,(c, m) e@f,, <g,h@i>";
        assert_eq!(split_addresses(v), ["a@b", "\"x, y\" <c@d>", "(c, m) e@f", "<g,h@i>"]);
        assert_eq!(bare_address("\"x, y\" <c@d>"), "c@d");
        assert_eq!(bare_address(" e@f "), "e@f");
    }

    #[test]
    fn an_endless_header_line_is_capped() {
        let mut msg = b"X-Long: ".to_vec();
        msg.extend(std::iter::repeat_n(b'a', MAX_HEADER_VALUE_BYTES * 4));
        let block = parse_header_block(&msg);
        // The cap counts the space after the colon, which trimming then removes.
        assert_eq!(block.first("x-long").map(<[u8]>::len), Some(MAX_HEADER_VALUE_BYTES - 1));
        assert!(block.clipped);
        assert_eq!(block.body_offset, None);
    }

    #[test]
    fn too_many_fields_are_dropped() {
        let msg: Vec<u8> = (0..MAX_HEADER_FIELDS + 10).flat_map(|i| format!("X-{i}: v\r\n").into_bytes()).collect();
        let block = parse_header_block(&msg);
        assert_eq!(block.fields.len(), MAX_HEADER_FIELDS);
        assert!(block.clipped);
    }
}
