//! Exact verification of one inspection chain over one buffer, with Suricata's relative-match
//! semantics: a step followed by a relative step is retried at each later occurrence until the
//! rest of the chain matches or the work budget runs out.

use super::compile::{CContent, CPcre, Chain, Num, Step};
use crate::rules::{ByteMathOp, ByteTestOp, Endian, NumBase, Transform};

/// Most inspection steps one chain evaluation may take, backtracking included. Suricata's
/// `inspection-recursion-limit` default is 3000; an attacker who controls the buffer can
/// otherwise make a relative chain quadratic.
pub const MAX_INSPECTION_STEPS: u32 = 3000;

/// Most variables one rule's `byte_extract`/`byte_math` define: the rule parser's
/// `MAX_RULE_VARS` (not exported by `rules`, so restated here).
pub(crate) const MAX_VARS: usize = 64;

/// Evaluation context of one chain on one buffer.
pub(crate) struct ChainRun<'a> {
    pub buf: &'a [u8],
    /// Where `buf` starts in its stream (non-zero for a stream window); absolute positions
    /// (`offset`, `depth`, `startswith`, absolute `isdataat`) count from the stream start.
    pub base: u64,
    /// A match must end after this index in `buf` (the start of not-yet-inspected stream
    /// data), so data already inspected in an earlier window does not alert again.
    pub min_end: usize,
    pub vars: &'a mut [i64; MAX_VARS],
    pub budget: u32,
}

/// Outcome of one step sequence.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Res {
    Match,
    NoMatch,
    /// Stop retrying: budget exhausted or a negated absolute content matched.
    Abort,
}

impl ChainRun<'_> {
    pub(crate) fn run(&mut self, chain: &Chain) -> bool {
        let need_new_data = chain.anchors_position && self.min_end > 0;
        self.steps(
            &chain.steps,
            0,
            0,
            if need_new_data { Some(0) } else { None },
        ) == Res::Match
    }

    /// `cursor`: end of the previous match; `last_end`: the furthest end of the positive matches
    /// so far, when some match must reach new stream data.
    fn steps(
        &mut self,
        steps: &[Step],
        index: usize,
        cursor: usize,
        last_end: Option<usize>,
    ) -> Res {
        let Some(step) = steps.get(index) else {
            return match last_end {
                Some(end) if end <= self.min_end => Res::NoMatch,
                _ => Res::Match,
            };
        };
        if self.budget == 0 {
            return Res::Abort;
        }
        self.budget -= 1;
        let next_relative = steps.get(index + 1).is_some_and(Step::is_relative);
        match step {
            Step::Content(c) => self.content(c, steps, index, cursor, last_end, next_relative),
            Step::Pcre(p) => self.pcre(p, steps, index, cursor, last_end, next_relative),
            Step::ByteTest(t, value, offset) => {
                let (Some(value), Some(offset)) = (self.num(*value), self.num(*offset)) else {
                    return Res::NoMatch;
                };
                let start = if t.relative {
                    (cursor as i64).saturating_add(offset)
                } else {
                    offset
                };
                let Some(extracted) = extract(
                    self.buf,
                    start,
                    usize::from(t.bytes),
                    t.endian,
                    t.string,
                    t.bitmask,
                ) else {
                    return Res::NoMatch;
                };
                let v = value as u64;
                let ok = match t.op {
                    ByteTestOp::Lt => extracted < v,
                    ByteTestOp::Gt => extracted > v,
                    ByteTestOp::Eq => extracted == v,
                    ByteTestOp::Le => extracted <= v,
                    ByteTestOp::Ge => extracted >= v,
                    ByteTestOp::And => extracted & v != 0,
                    ByteTestOp::Xor => extracted ^ v != 0,
                };
                if ok != t.negated {
                    self.steps(steps, index + 1, cursor, last_end)
                } else {
                    Res::NoMatch
                }
            }
            Step::ByteJump(j, offset) => {
                let Some(offset) = self.num(*offset) else {
                    return Res::NoMatch;
                };
                let start = if j.relative {
                    (cursor as i64).saturating_add(offset)
                } else {
                    offset
                };
                let bytes = usize::from(j.bytes);
                let Some(value) = extract(self.buf, start, bytes, j.endian, j.string, j.bitmask)
                else {
                    return Res::NoMatch;
                };
                let mut jump = i128::from(value) * i128::from(j.multiplier);
                if j.align && jump % 4 != 0 {
                    jump += 4 - jump % 4;
                }
                let from = if j.from_beginning {
                    0
                } else if j.from_end {
                    self.buf.len() as i128
                } else {
                    i128::from(start) + bytes as i128
                };
                // Suricata 7+ clamps a jump before the buffer to its start and allows landing
                // exactly at its end.
                let target = (from + jump + i128::from(j.post_offset)).max(0);
                if target > self.buf.len() as i128 {
                    return Res::NoMatch;
                }
                self.steps(steps, index + 1, target as usize, last_end)
            }
            Step::ByteExtract(e, slot) => {
                let start = if e.relative {
                    (cursor as i64).saturating_add(i64::from(e.offset))
                } else {
                    i64::from(e.offset)
                };
                let bytes = usize::from(e.bytes);
                let Some(value) = extract(self.buf, start, bytes, e.endian, e.string, e.bitmask)
                else {
                    return Res::NoMatch;
                };
                let mut value = value.saturating_mul(u64::from(e.multiplier));
                let align = u64::from(e.align);
                if align > 1 && value % align != 0 {
                    value = value.saturating_add(align - value % align);
                }
                if let Some(v) = self.vars.get_mut(*slot) {
                    *v = i64::try_from(value).unwrap_or(i64::MAX);
                }
                // Later relative steps continue after the extracted bytes.
                let next = (start as usize).saturating_add(bytes);
                self.steps(steps, index + 1, next, last_end)
            }
            Step::ByteMath(m, rvalue, slot) => {
                let Some(rvalue) = self.num(*rvalue) else {
                    return Res::NoMatch;
                };
                let start = if m.relative {
                    (cursor as i64).saturating_add(i64::from(m.offset))
                } else {
                    i64::from(m.offset)
                };
                let Some(value) = extract(
                    self.buf,
                    start,
                    usize::from(m.bytes),
                    m.endian,
                    m.string,
                    m.bitmask,
                ) else {
                    return Res::NoMatch;
                };
                let l = i128::from(value);
                let r = i128::from(rvalue);
                // u64 and i64 operands: sums, differences and products fit in i128; shifts are
                // checked so an extracted value can never overflow.
                let result = match m.op {
                    ByteMathOp::Add => l + r,
                    ByteMathOp::Sub => l - r,
                    ByteMathOp::Mul => l * r,
                    ByteMathOp::Div => {
                        if r == 0 {
                            return Res::NoMatch;
                        }
                        l / r
                    }
                    ByteMathOp::Shl | ByteMathOp::Shr => {
                        let Ok(shift) = u32::try_from(r) else {
                            return Res::NoMatch;
                        };
                        if shift >= 64 {
                            return Res::NoMatch;
                        }
                        let v = u128::from(value);
                        let shifted = if m.op == ByteMathOp::Shl {
                            v << shift
                        } else {
                            v >> shift
                        };
                        i128::try_from(shifted).unwrap_or(i128::MAX)
                    }
                };
                if let Some(v) = self.vars.get_mut(*slot) {
                    *v = i64::try_from(result).unwrap_or(if result < 0 {
                        i64::MIN
                    } else {
                        i64::MAX
                    });
                }
                self.steps(steps, index + 1, cursor, last_end)
            }
            Step::IsDataAt(d, offset) => {
                let Some(offset) = self.num(*offset) else {
                    return Res::NoMatch;
                };
                let position = if d.relative {
                    (cursor as i64).saturating_add(offset)
                } else {
                    offset.saturating_sub(self.base_i64())
                };
                let present = position >= 0 && (position as u64) < self.buf.len() as u64;
                if present != d.negated {
                    self.steps(steps, index + 1, cursor, last_end)
                } else {
                    Res::NoMatch
                }
            }
            Step::Bsize(cmp) => {
                if cmp.matches(self.buf.len() as u64) {
                    self.steps(steps, index + 1, cursor, last_end)
                } else {
                    Res::NoMatch
                }
            }
        }
    }

    fn base_i64(&self) -> i64 {
        i64::try_from(self.base).unwrap_or(i64::MAX)
    }

    fn num(&self, n: Num) -> Option<i64> {
        match n {
            Num::Lit(v) => Some(v),
            Num::Var(slot) => self.vars.get(slot).copied(),
        }
    }

    fn content(
        &mut self,
        c: &CContent,
        steps: &[Step],
        index: usize,
        cursor: usize,
        last_end: Option<usize>,
        next_relative: bool,
    ) -> Res {
        let len = self.buf.len() as i64;
        let plen = c.pattern.len() as i64;
        // The search window [start, end) in buffer indices, as Suricata computes it.
        let (mut start, mut end): (i64, i64);
        if c.distance.is_some() || c.within.is_some() {
            let distance = match c.distance {
                Some(d) => match self.num(d) {
                    Some(v) => v,
                    None => return Res::NoMatch,
                },
                None => 0,
            };
            start = (cursor as i64).saturating_add(distance).max(0);
            end = len;
            if let Some(w) = c.within {
                let Some(within) = self.num(w) else {
                    return Res::NoMatch;
                };
                end = end.min(
                    (cursor as i64)
                        .saturating_add(distance)
                        .saturating_add(within),
                );
            }
        } else {
            let base = self.base_i64();
            let offset = match c.offset {
                Some(o) => match self.num(o) {
                    Some(v) => v,
                    None => return Res::NoMatch,
                },
                None => 0,
            };
            start = offset.saturating_sub(base).max(0);
            end = len;
            if let Some(d) = c.depth {
                let Some(depth) = self.num(d) else {
                    return Res::NoMatch;
                };
                end = end.min(offset.saturating_add(depth).saturating_sub(base));
            }
            if c.startswith {
                end = end.min(plen.saturating_sub(base));
            }
        }
        let found_once = |this: &Self, from: i64| -> Option<usize> {
            if from < 0 || end.saturating_sub(from) < plen {
                return None;
            }
            let window = this.buf.get(from as usize..end as usize)?;
            if c.endswith {
                // Only an occurrence ending at the buffer's end counts.
                if end != len {
                    return None;
                }
                let tail = window.get(window.len() - c.pattern.len()..)?;
                return eq(tail, &c.pattern, c.nocase)
                    .then(|| from as usize + window.len() - c.pattern.len());
            }
            find(window, &c.pattern, c.nocase).map(|i| from as usize + i)
        };
        if c.negated {
            let found = found_once(self, start);
            return match found {
                Some(_) => {
                    let single = !(c.distance.is_some() || c.within.is_some());
                    if single && c.offset.is_none() && c.depth.is_none() {
                        Res::Abort
                    } else {
                        Res::NoMatch
                    }
                }
                None => self.steps(steps, index + 1, cursor, last_end),
            };
        }
        loop {
            let Some(at) = found_once(self, start) else {
                return Res::NoMatch;
            };
            let match_end = at + c.pattern.len();
            let reached = last_end.map(|e| e.max(match_end));
            let r = self.steps(steps, index + 1, match_end, reached);
            match r {
                Res::Match | Res::Abort => return r,
                Res::NoMatch => {}
            }
            // The chain can only improve by moving this match if something after it depends on
            // its position (a relative step) or it must reach new stream data.
            let must_reach_new = reached.is_some_and(|e| e <= self.min_end);
            if !next_relative && !must_reach_new {
                return Res::NoMatch;
            }
            if self.budget == 0 {
                return Res::Abort;
            }
            self.budget -= 1;
            start = at as i64 + 1;
        }
    }

    fn pcre(
        &mut self,
        p: &CPcre,
        steps: &[Step],
        index: usize,
        cursor: usize,
        last_end: Option<usize>,
        next_relative: bool,
    ) -> Res {
        let base = if p.relative { cursor } else { 0 };
        let Some(subject) = self.buf.get(base..) else {
            return Res::NoMatch;
        };
        if p.negated {
            return match p.regex.is_match(subject) {
                Ok(false) => self.steps(steps, index + 1, cursor, last_end),
                // A regex error (match limit) counts as no match, as in Suricata.
                Ok(true) | Err(_) => Res::NoMatch,
            };
        }
        let mut from = 0usize;
        loop {
            let found = match p.regex.find_at(subject, from) {
                Ok(Some(m)) => (m.start(), m.end()),
                Ok(None) | Err(_) => return Res::NoMatch,
            };
            let match_end = base + found.1;
            let reached = last_end.map(|e| e.max(match_end));
            let r = self.steps(steps, index + 1, match_end, reached);
            match r {
                Res::Match | Res::Abort => return r,
                Res::NoMatch => {}
            }
            let must_reach_new = reached.is_some_and(|e| e <= self.min_end);
            if !next_relative && !must_reach_new {
                return Res::NoMatch;
            }
            if self.budget == 0 || found.0 >= subject.len() {
                return Res::Abort;
            }
            self.budget -= 1;
            from = found.0 + 1;
        }
    }
}

fn eq(a: &[u8], b: &[u8], nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// First occurrence of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8], nocase: bool) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if !nocase {
        return memchr::memmem::find(hay, needle);
    }
    let first = needle[0];
    let (lo, hi) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let rest = hay.get(i..=last_start)?;
        let step = memchr::memchr2(lo, hi, rest)?;
        let at = i + step;
        if hay
            .get(at..at + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Reads a number from `buf[start..start+bytes]`: binary in `endian`, or ASCII digits in
/// `string`'s base; `bitmask` masks and shifts right by its trailing zeros (Suricata).
pub(crate) fn extract(
    buf: &[u8],
    start: i64,
    bytes: usize,
    endian: Endian,
    string: Option<NumBase>,
    bitmask: Option<u32>,
) -> Option<u64> {
    let start = usize::try_from(start).ok()?;
    let raw = buf.get(start..start.checked_add(bytes)?)?;
    let value = match string {
        None => {
            if bytes > 8 {
                return None;
            }
            let mut v: u64 = 0;
            match endian {
                Endian::Big => {
                    for &b in raw {
                        v = (v << 8) | u64::from(b);
                    }
                }
                Endian::Little => {
                    for &b in raw.iter().rev() {
                        v = (v << 8) | u64::from(b);
                    }
                }
            }
            v
        }
        Some(base) => {
            let radix = match base {
                NumBase::Hex => 16,
                NumBase::Dec => 10,
                NumBase::Oct => 8,
            };
            // Suricata parses the leading digits and needs at least one.
            let digits: &[u8] = {
                let n = raw
                    .iter()
                    .take_while(|b| (**b as char).is_digit(radix))
                    .count();
                raw.get(..n)?
            };
            if digits.is_empty() {
                return None;
            }
            let text = std::str::from_utf8(digits).ok()?;
            u64::from_str_radix(text, radix).ok()?
        }
    };
    Some(match bitmask {
        Some(mask) if mask != 0 => (value & u64::from(mask)) >> mask.trailing_zeros(),
        _ => value,
    })
}

/// Applies a chain's transforms; `None` when nothing changes (the caller uses the original).
pub(crate) fn apply_transforms(input: &[u8], transforms: &[Transform], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(input);
    let mut scratch: Vec<u8> = Vec::new();
    for t in transforms {
        scratch.clear();
        match t {
            Transform::ToLowercase | Transform::HeaderLowercase => out.make_ascii_lowercase(),
            Transform::ToUppercase => out.make_ascii_uppercase(),
            Transform::StripWhitespace => out.retain(|b| !b.is_ascii_whitespace()),
            Transform::CompressWhitespace => {
                let mut in_space = false;
                for &b in out.iter() {
                    if b.is_ascii_whitespace() {
                        if !in_space {
                            scratch.push(b' ');
                        }
                        in_space = true;
                    } else {
                        scratch.push(b);
                        in_space = false;
                    }
                }
                std::mem::swap(out, &mut scratch);
            }
            Transform::DotPrefix => out.insert(0, b'.'),
            Transform::UrlDecode => {
                let mut i = 0;
                while i < out.len() {
                    let b = out[i];
                    if b == b'%'
                        && let (Some(h), Some(l)) = (
                            out.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                            out.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
                        )
                    {
                        scratch.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    scratch.push(if b == b'+' { b' ' } else { b });
                    i += 1;
                }
                std::mem::swap(out, &mut scratch);
            }
            Transform::Xor(key) if !key.is_empty() => {
                for (i, b) in out.iter_mut().enumerate() {
                    *b ^= key[i % key.len()];
                }
            }
            // Unsupported transforms make the rule unsupported at compile time.
            _ => {}
        }
    }
}
