//! An address index over IP-only rules: ET ships over a thousand of them (`alert ip [list of
//! bad addresses] any -> $HOME_NET any`), and checking each list on every new flow direction is
//! the engine's biggest per-flow cost. Each rule is indexed by the narrower side of its header;
//! a lookup returns a superset of the rules whose addresses can match, which are then verified.

use std::net::IpAddr;

use weir_core::FlowKey;

use crate::rules::{AddressExpr, IpBlock, RuleDirection};

/// Widest IPv4 block indexed (a /16): wider ones make a lookup scan too many neighbours, so a
/// rule with one on both sides is checked on every flow instead.
const MAX_V4_SPAN: u128 = 1 << 16;
/// Widest IPv6 block indexed (a /112).
const MAX_V6_SPAN: u128 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    lo: u128,
    hi: u128,
    rule: u32,
    side: Side,
    /// `<>` rules: either packet address may fall on the indexed side.
    either: bool,
}

#[derive(Debug, Default)]
pub(crate) struct IpOnlyIndex {
    v4: Vec<Entry>,
    v6: Vec<Entry>,
    /// Rules with no narrow positive address list on either side.
    always: Vec<u32>,
}

fn block_range(b: &IpBlock) -> (bool, u128, u128) {
    match *b {
        IpBlock::Cidr { network, prefix } => match network {
            IpAddr::V4(n) => {
                let bits = 32 - u32::from(prefix.min(32));
                let base = u128::from(u32::from(n)) >> bits << bits;
                (true, base, base + ((1u128 << bits) - 1))
            }
            IpAddr::V6(n) => {
                let bits = 128 - u32::from(prefix.min(128));
                let v = u128::from(n);
                let (base, last) = if bits == 128 {
                    (0, u128::MAX)
                } else {
                    let base = v >> bits << bits;
                    (base, base | ((1u128 << bits) - 1))
                };
                (false, base, last)
            }
        },
        IpBlock::Range { first, last } => match (first, last) {
            (IpAddr::V4(f), IpAddr::V4(l)) => {
                (true, u128::from(u32::from(f)), u128::from(u32::from(l)))
            }
            (IpAddr::V6(f), IpAddr::V6(l)) => (false, u128::from(f), u128::from(l)),
            // The parser refuses mixed families; an empty range never matches.
            _ => (true, 1, 0),
        },
    }
}

/// The positive blocks of an expression, which every matching address lies in; `None` when
/// the expression can match outside them (`any`, a list of only negations) or a block is wide.
fn narrow_blocks(e: &AddressExpr, out: &mut Vec<(bool, u128, u128)>) -> bool {
    match e {
        AddressExpr::Any | AddressExpr::Not(_) => false,
        AddressExpr::Block(b) => {
            let (v4, lo, hi) = block_range(b);
            let span = hi.saturating_sub(lo);
            if span >= if v4 { MAX_V4_SPAN } else { MAX_V6_SPAN } {
                return false;
            }
            out.push((v4, lo, hi));
            true
        }
        AddressExpr::List(items) => {
            let mut any_positive = false;
            for item in items {
                match item {
                    // Negations only narrow a list that has positives.
                    AddressExpr::Not(_) => {}
                    other => {
                        if !narrow_blocks(other, out) {
                            return false;
                        }
                        any_positive = true;
                    }
                }
            }
            any_positive
        }
    }
}

fn key_of(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, u128::from(a)),
    }
}

impl IpOnlyIndex {
    pub(crate) fn add(
        &mut self,
        rule: u32,
        src: &AddressExpr,
        dst: &AddressExpr,
        direction: RuleDirection,
    ) {
        let mut src_blocks = Vec::new();
        let mut dst_blocks = Vec::new();
        let src_ok = narrow_blocks(src, &mut src_blocks);
        let dst_ok = narrow_blocks(dst, &mut dst_blocks);
        let (side, blocks) = match (src_ok, dst_ok) {
            (true, true) if dst_blocks.len() < src_blocks.len() => (Side::Dst, dst_blocks),
            (true, _) => (Side::Src, src_blocks),
            (false, true) => (Side::Dst, dst_blocks),
            (false, false) => {
                self.always.push(rule);
                return;
            }
        };
        let either = direction != RuleDirection::ToDestination;
        for (v4, lo, hi) in blocks {
            let entry = Entry {
                lo,
                hi,
                rule,
                side,
                either,
            };
            if v4 {
                self.v4.push(entry);
            } else {
                self.v6.push(entry);
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        self.v4.sort_by_key(|e| e.lo);
        self.v6.sort_by_key(|e| e.lo);
    }

    /// Calls `add` with every rule that may match `key` (possibly more than once).
    pub(crate) fn candidates(&self, key: &FlowKey, mut add: impl FnMut(u32)) {
        for &r in &self.always {
            add(r);
        }
        for (ip, side) in [(key.src_ip, Side::Src), (key.dst_ip, Side::Dst)] {
            let (v4, point) = key_of(ip);
            let (entries, span) = if v4 {
                (&self.v4, MAX_V4_SPAN)
            } else {
                (&self.v6, MAX_V6_SPAN)
            };
            let end = entries.partition_point(|e| e.lo <= point);
            // Every indexed block is narrower than `span`, so only entries starting within
            // `span` below the point can contain it.
            for e in entries[..end].iter().rev() {
                if point - e.lo > span {
                    break;
                }
                if e.hi >= point && (e.either || e.side == side) {
                    add(e.rule);
                }
            }
        }
    }
}
