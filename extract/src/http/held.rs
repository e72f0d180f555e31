//! Header bytes a worker's HTTP parsers hold, charged to one shared budget.
//!
//! A header block is held from its first line until its transaction is retired: unfinished (a
//! slow client can keep it so for minutes) and then in the open transaction. Each flow is capped
//! by [`HttpConfig::max_header_bytes`](super::HttpConfig::max_header_bytes) per block, but
//! thousands of flows times that is unbounded; the budget bounds the sum.

use crate::mime::HeldMessageBudget;

use super::{strip_eol, Header};

/// Default for [`HttpConfig::held_header_budget`](super::HttpConfig::held_header_budget): header
/// bytes all HTTP flows of one worker hold at once (`[app_layer.http] header_memcap`). Real
/// header blocks are around 1 KiB and held briefly, so this covers tens of thousands of open
/// transactions; a client holding 64 KiB blocks open gets about a thousand.
pub const DEFAULT_MAX_HELD_HEADER_BYTES: usize = 64 << 20;

/// Bytes charged to a budget by one holder, given back when it is dropped.
#[derive(Debug, Default)]
pub(super) struct HeaderCharge {
    budget: Option<HeldMessageBudget>,
    bytes: usize,
}

impl HeaderCharge {
    /// Makes room in `raw` for `add` more bytes, charging what its capacity grows by. Grows by
    /// doubling up to `cap` (so a block does not reallocate per line), or just enough when the
    /// budget is short of that. False, and `raw` unchanged, when even that is not left.
    pub(super) fn reserve(&mut self, raw: &mut Vec<u8>, add: usize, cap: usize, budget: &HeldMessageBudget) -> bool {
        let (len, capacity) = (raw.len(), raw.capacity());
        if capacity - len >= add {
            return true;
        }
        let need = len + add;
        let doubled = (len * 2).max(need).min(cap.max(need));
        for target in [doubled, need] {
            let extra = target - capacity;
            let granted = budget.take(extra);
            if granted < extra {
                budget.give_back(granted);
                continue;
            }
            raw.reserve_exact(target - len);
            self.budget.get_or_insert_with(|| budget.clone());
            self.add_growth(raw.capacity() - capacity, extra);
            return true;
        }
        false
    }

    /// Charges memory that grew outside [`HeaderCharge::reserve`] (a terminator appended),
    /// even past the budget's limit: it is already allocated.
    pub(super) fn charge_growth(&mut self, grown: usize) {
        if let Some(b) = &self.budget {
            b.charge(grown);
            self.bytes += grown;
        }
    }

    /// Settles `granted` bytes taken ahead against the `grown` the allocator really gave.
    fn add_growth(&mut self, grown: usize, granted: usize) {
        if let Some(b) = &self.budget {
            if grown >= granted {
                b.charge(grown - granted);
            } else {
                b.give_back(granted - grown);
            }
        }
        self.bytes += grown;
    }

    /// Gives back everything charged: the memory it stood for is gone.
    pub(super) fn release(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.bytes);
        }
        self.bytes = 0;
    }

    /// Takes over `other`'s bytes: they now live as long as `self`.
    pub(super) fn absorb(&mut self, mut other: HeaderCharge) {
        if self.budget.is_none() {
            self.budget = other.budget.take();
        }
        self.bytes += std::mem::take(&mut other.bytes);
    }

    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for HeaderCharge {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.bytes);
        }
    }
}

/// The headers of a raw header block, read as the parser read them line by line: obsolete
/// folding joins the previous header, lines without a colon are skipped, at most
/// `max_headers` are kept. Parsing once the block is whole keeps one copy held, not two.
pub(super) fn parse_header_lines(raw: &[u8], max_headers: usize) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::new();
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let content = strip_eol(line);
        if content.is_empty() {
            continue;
        }
        if matches!(content.first(), Some(b' ' | b'\t'))
            && let Some(last) = headers.last_mut()
        {
            let more = content.trim_ascii();
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(b' ');
                }
                last.value.extend_from_slice(more);
            }
            continue;
        }
        let Some(colon) = content.iter().position(|&b| b == b':') else { continue };
        if headers.len() >= max_headers {
            continue;
        }
        headers.push(Header { name: content[..colon].trim_ascii().to_vec(), value: content[colon + 1..].trim_ascii().to_vec() });
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_charges_capacity_and_drop_gives_it_back() {
        let budget = HeldMessageBudget::new(1000);
        let mut raw = Vec::new();
        let mut charge = HeaderCharge::default();
        assert!(charge.reserve(&mut raw, 100, 600, &budget));
        raw.extend_from_slice(&[b'a'; 100]);
        assert!(charge.reserve(&mut raw, 100, 600, &budget));
        raw.extend_from_slice(&[b'b'; 100]);
        assert_eq!(charge.bytes(), raw.capacity());
        assert_eq!(budget.held(), raw.capacity());
        // Past what is left: refused, nothing changes.
        let before = (raw.capacity(), budget.held());
        assert!(!charge.reserve(&mut raw, 2000, 4000, &budget));
        assert_eq!((raw.capacity(), budget.held()), before);
        drop(charge);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn reserve_falls_back_to_just_enough_when_doubling_does_not_fit() {
        let budget = HeldMessageBudget::new(300);
        let mut raw = vec![0u8; 0];
        let mut charge = HeaderCharge::default();
        assert!(charge.reserve(&mut raw, 200, 1000, &budget));
        raw.resize(200, b'x');
        // Doubling would want 400 in all; 250 fits.
        assert!(charge.reserve(&mut raw, 50, 1000, &budget));
        assert!(raw.capacity() >= 250 && budget.held() == raw.capacity(), "{} {}", raw.capacity(), budget.held());
    }

    #[test]
    fn absorbed_charges_are_given_back_once() {
        let budget = HeldMessageBudget::new(1000);
        let mut raw = Vec::new();
        let mut block = HeaderCharge::default();
        assert!(block.reserve(&mut raw, 64, 64, &budget));
        let mut slot = HeaderCharge::default();
        slot.absorb(block);
        assert_eq!(budget.held(), raw.capacity());
        drop(slot);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn header_lines_parse_as_the_line_parser_did() {
        let raw = b"Host: a\r\nX-Long: one\r\n  two\r\nno colon here\r\nA: 1\r\nB: 2\r\n\r\n";
        let headers = parse_header_lines(raw, 3);
        let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|h| (&h.name[..], &h.value[..])).collect();
        assert_eq!(pairs, vec![(&b"Host"[..], &b"a"[..]), (b"X-Long", b"one two"), (b"A", b"1")]);
        // A folded line with nothing before it has no colon: skipped.
        assert!(parse_header_lines(b" folded\r\n", 3).is_empty());
    }
}
