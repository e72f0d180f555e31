//! Content-Encoding removal (gzip, deflate as zlib or raw, brotli, stacked), streaming and capped.
//!
//! Every layer is pulled: it writes into a fixed buffer of [`LAYER_CHUNK_BYTES`] and hands that
//! chunk to the layer below it (or to the caller) before it decodes more, so a decompression bomb
//! never expands past one chunk per layer before the size and ratio caps are checked, whatever its
//! ratio (brotli has no bound) and however many codings are stacked (each multiplies).

use brotli::{BrotliDecompressStream, BrotliResult, BrotliState, HeapAlloc, HuffmanCode};
use flate2::{Decompress, FlushDecompress, Status};

/// Compressed bytes fed to the outermost layer per step, so `input_total` (the ratio's
/// denominator) follows the input closely.
const DECODE_STEP_BYTES: usize = 1024;

/// Decompressed bytes a layer produces before they are passed on and the caps checked. Memory
/// in flight is one such buffer per layer, whatever the compression ratio.
pub(crate) const LAYER_CHUNK_BYTES: usize = 16 * 1024;

/// Decompressed output below this size is never judged by the ratio cap: small, highly
/// compressible bodies (a page of zeros) are normal.
const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// What a Content-Encoding token asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    /// Parses one token of a Content-Encoding list; `Ok(None)` for identity, `Err` for unknown.
    fn parse(token: &[u8]) -> Result<Option<Coding>, ()> {
        // Servers send odd bytes around the name (NUL, NBSP, tabs); browsers still decode.
        let t = token.trim_ascii_start();
        let start = t.iter().position(|b| b.is_ascii_alphanumeric()).unwrap_or(t.len());
        let t = &t[start..];
        let end = t.iter().rposition(|b| b.is_ascii_alphanumeric()).map_or(0, |p| p + 1);
        let t = &t[..end];
        if t.eq_ignore_ascii_case(b"gzip") || t.eq_ignore_ascii_case(b"x-gzip") {
            Ok(Some(Coding::Gzip))
        } else if t.eq_ignore_ascii_case(b"deflate") || t.eq_ignore_ascii_case(b"x-deflate") {
            Ok(Some(Coding::Deflate))
        } else if t.eq_ignore_ascii_case(b"br") {
            Ok(Some(Coding::Brotli))
        } else if t.eq_ignore_ascii_case(b"identity") || t.is_empty() {
            Ok(None)
        } else {
            Err(())
        }
    }
}

/// The codings of a Content-Encoding value in the order to undo them (last applied first),
/// whether an unknown token was seen, and whether the layer limit cut the list.
pub(crate) fn parse_codings(value: &[u8], layer_limit: usize) -> (Vec<Coding>, bool, bool) {
    let mut applied = Vec::new();
    let mut unknown = false;
    for token in value.split(|&b| b == b',') {
        match Coding::parse(token) {
            Ok(Some(c)) => applied.push(c),
            Ok(None) => {}
            Err(()) => unknown = true,
        }
    }
    applied.reverse();
    let over = applied.len() > layer_limit;
    applied.truncate(layer_limit);
    (applied, unknown, over)
}

type BrotliDecoder = BrotliState<HeapAlloc<u8>, HeapAlloc<u32>, HeapAlloc<HuffmanCode>>;

enum Layer {
    /// "deflate" is zlib-wrapped by the standard and raw by some servers; browsers accept both,
    /// so the first two bytes decide. Holds the first byte until the second arrives.
    DeflateUndecided(Option<u8>),
    Gzip(Box<GzipLayer>),
    /// A zlib or raw deflate stream, and the byte held while deciding which (fed first).
    Deflate(Box<Decompress>, Option<u8>),
    Brotli(Box<BrotliDecoder>),
    /// The stream ended; later input is ignored, as browsers ignore trailing bytes.
    Done,
}

fn looks_like_zlib(b0: u8, b1: u8) -> bool {
    b0 & 0x0f == 8 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0
}

/// Input consumed and output produced by one pull.
type Pulled = (usize, usize);

impl Layer {
    fn new(c: Coding) -> Layer {
        match c {
            Coding::Gzip => Layer::Gzip(Box::new(GzipLayer::new())),
            Coding::Deflate => Layer::DeflateUndecided(None),
            // Strict: no "large window" streams (up to a 1 GiB window); HTTP's br never uses them.
            Coding::Brotli => Layer::Brotli(Box::new(BrotliState::new_strict(
                HeapAlloc::new(0),
                HeapAlloc::new(0),
                HeapAlloc::new(HuffmanCode::default()),
            ))),
        }
    }

    /// Decodes from `input` into `out`, stopping when `out` is full. An empty `input` drains
    /// output the layer still holds. `Err` on a corrupt stream.
    fn pull(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pulled, ()> {
        match self {
            Layer::DeflateUndecided(first) => match (*first, input.first()) {
                (_, None) => Ok((0, 0)),
                (None, Some(&b0)) => {
                    *first = Some(b0);
                    Ok((1, 0))
                }
                (Some(b0), Some(&b1)) => {
                    *self = Layer::Deflate(Box::new(Decompress::new(looks_like_zlib(b0, b1))), Some(b0));
                    self.pull(input, out)
                }
            },
            Layer::Deflate(inflate, held) => {
                if let Some(b0) = *held {
                    let (c, p, ended) = inflate_some(inflate, &[b0], out)?;
                    if ended {
                        *self = Layer::Done;
                        return Ok((0, p));
                    }
                    if c == 1 {
                        *held = None;
                    } else if p == 0 {
                        return Err(());
                    }
                    if p > 0 || held.is_some() {
                        // Output (or the held byte) first; the caller pulls again with `input`.
                        return Ok((0, p));
                    }
                }
                let (consumed, produced, ended) = inflate_some(inflate, input, out)?;
                if ended {
                    *self = Layer::Done;
                }
                Ok((consumed, produced))
            }
            Layer::Gzip(gz) => {
                let pulled = gz.pull(input, out)?;
                if gz.trailing_garbage {
                    *self = Layer::Done;
                }
                Ok(pulled)
            }
            Layer::Brotli(state) => {
                let (mut avail_in, mut in_offset) = (input.len(), 0);
                let (mut avail_out, mut out_offset, mut total_out) = (out.len(), 0, 0);
                let result = BrotliDecompressStream(
                    &mut avail_in,
                    &mut in_offset,
                    input,
                    &mut avail_out,
                    &mut out_offset,
                    out,
                    &mut total_out,
                    state,
                );
                match result {
                    BrotliResult::ResultFailure => Err(()),
                    BrotliResult::ResultSuccess => {
                        *self = Layer::Done;
                        Ok((in_offset, out_offset))
                    }
                    BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => Ok((in_offset, out_offset)),
                }
            }
            Layer::Done => Ok((input.len(), 0)),
        }
    }

    /// Whether the stream ended where a complete encoding may end (or never started).
    fn is_complete(&self) -> bool {
        match self {
            Layer::DeflateUndecided(first) => first.is_none(),
            Layer::Gzip(gz) => gz.between_members(),
            Layer::Deflate(..) | Layer::Brotli(_) => false,
            Layer::Done => true,
        }
    }
}

/// One `decompress` call: (consumed, produced, stream ended).
fn inflate_some(inflate: &mut Decompress, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), ()> {
    let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
    let status = inflate.decompress(input, out, FlushDecompress::None).map_err(|_| ())?;
    // Both deltas are bounded by the slices just given, so they fit in usize.
    let consumed = usize::try_from(inflate.total_in() - in_before).map_err(|_| ())?;
    let produced = usize::try_from(inflate.total_out() - out_before).map_err(|_| ())?;
    Ok((consumed, produced, status == Status::StreamEnd))
}

/// Gzip header flag bits (RFC 1952 section 2.3.1).
const GZIP_FHCRC: u8 = 0x02;
const GZIP_FEXTRA: u8 = 0x04;
const GZIP_FNAME: u8 = 0x08;
const GZIP_FCOMMENT: u8 = 0x10;
/// ID1, ID2, CM, FLG, MTIME (4), XFL, OS.
const GZIP_FIXED_HEADER_BYTES: u8 = 10;
/// CRC32 and ISIZE after each member's deflate data.
const GZIP_TRAILER_BYTES: u8 = 8;

/// Where a gzip member's parser is. Header fields are skipped byte by byte and never stored,
/// so a long FNAME or FEXTRA costs no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GzipStage {
    Fixed { seen: u8 },
    ExtraLen { seen: u8, len: u16 },
    Extra { left: u16 },
    Name,
    Comment,
    HeaderCrc { left: u8 },
    Body,
    Trailer { left: u8 },
}

/// Gzip members (RFC 1952) one after the other, as a multi-member decoder reads them. The
/// trailer's CRC and length are skipped, not checked: browsers show such bodies as well.
struct GzipLayer {
    stage: GzipStage,
    flags: u8,
    inflate: Decompress,
    members_done: u32,
    /// Bytes after a complete member that do not start another: ignored from here on.
    trailing_garbage: bool,
}

impl GzipLayer {
    fn new() -> GzipLayer {
        GzipLayer {
            stage: GzipStage::Fixed { seen: 0 },
            flags: 0,
            inflate: Decompress::new(false),
            members_done: 0,
            trailing_garbage: false,
        }
    }

    fn between_members(&self) -> bool {
        self.trailing_garbage || (self.members_done > 0 && self.stage == GzipStage::Fixed { seen: 0 })
    }

    /// The header field that follows `after` given the member's flags.
    fn next_field(&self, after: GzipStage) -> GzipStage {
        let order = [
            (GZIP_FEXTRA, GzipStage::ExtraLen { seen: 0, len: 0 }),
            (GZIP_FNAME, GzipStage::Name),
            (GZIP_FCOMMENT, GzipStage::Comment),
            (GZIP_FHCRC, GzipStage::HeaderCrc { left: 2 }),
        ];
        let rank = match after {
            GzipStage::Fixed { .. } => 0,
            GzipStage::ExtraLen { .. } | GzipStage::Extra { .. } => 1,
            GzipStage::Name => 2,
            GzipStage::Comment => 3,
            _ => 4,
        };
        order[rank.min(order.len())..]
            .iter()
            .find(|(bit, _)| self.flags & bit != 0)
            .map_or(GzipStage::Body, |&(_, stage)| stage)
    }

    fn pull(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pulled, ()> {
        let mut at = 0;
        while self.stage != GzipStage::Body {
            let Some(&b) = input.get(at) else { return Ok((at, 0)) };
            at += 1;
            self.stage = match self.stage {
                GzipStage::Fixed { seen } => {
                    let expected = match seen {
                        0 => Some(0x1f),
                        1 => Some(0x8b),
                        2 => Some(8), // CM: deflate, the only method defined
                        _ => None,
                    };
                    if expected.is_some_and(|e| e != b) {
                        if self.members_done > 0 {
                            self.trailing_garbage = true;
                            return Ok((input.len(), 0));
                        }
                        return Err(());
                    }
                    if seen == 3 {
                        self.flags = b;
                    }
                    if seen + 1 == GZIP_FIXED_HEADER_BYTES {
                        self.next_field(GzipStage::Fixed { seen })
                    } else {
                        GzipStage::Fixed { seen: seen + 1 }
                    }
                }
                GzipStage::ExtraLen { seen: 0, .. } => GzipStage::ExtraLen { seen: 1, len: u16::from(b) },
                GzipStage::ExtraLen { len, .. } => {
                    let left = len | u16::from(b) << 8;
                    if left == 0 { self.next_field(GzipStage::Extra { left }) } else { GzipStage::Extra { left } }
                }
                GzipStage::Extra { left } if left > 1 => GzipStage::Extra { left: left - 1 },
                s @ (GzipStage::Name | GzipStage::Comment) if b != 0 => s,
                s @ (GzipStage::Extra { .. } | GzipStage::Name | GzipStage::Comment) => self.next_field(s),
                GzipStage::HeaderCrc { left } if left > 1 => GzipStage::HeaderCrc { left: left - 1 },
                GzipStage::HeaderCrc { .. } => GzipStage::Body,
                GzipStage::Trailer { left } if left > 1 => GzipStage::Trailer { left: left - 1 },
                GzipStage::Trailer { .. } => {
                    self.members_done = self.members_done.saturating_add(1);
                    self.inflate.reset(false);
                    self.flags = 0;
                    GzipStage::Fixed { seen: 0 }
                }
                GzipStage::Body => GzipStage::Body,
            };
            if matches!(self.stage, GzipStage::Fixed { seen: 0 }) {
                // A member just ended: hand back control so its end is seen even with no more input.
                return Ok((at, 0));
            }
        }
        let (consumed, produced, ended) = inflate_some(&mut self.inflate, &input[at..], out)?;
        if ended {
            self.stage = GzipStage::Trailer { left: GZIP_TRAILER_BYTES };
        }
        Ok((at + consumed, produced))
    }
}

/// Why decoding stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeStop {
    Corrupt,
    SizeLimit,
    RatioLimit,
}

/// Why `drive` returned early.
enum Halt {
    Corrupt,
    Stopped(DecodeStop),
}

/// A stack of content decoders with size and ratio caps.
pub(crate) struct ContentDecoder {
    layers: Vec<Layer>,
    max_output: u64,
    max_ratio: u64,
    input_total: u64,
    output_total: u64,
    stopped: Option<DecodeStop>,
    /// Input kept until the first decoded byte: if the very start does not decode, the body
    /// was never encoded (a lying Content-Encoding) and is passed through as it is.
    undecided_input: Vec<u8>,
    passthrough: bool,
}

/// Most input held while waiting for the first decoded byte.
const MAX_UNDECIDED_INPUT_BYTES: usize = 64 * 1024;

impl ContentDecoder {
    pub(crate) fn new(codings: &[Coding], max_output: u64, max_ratio: u64) -> ContentDecoder {
        ContentDecoder {
            layers: codings.iter().map(|&c| Layer::new(c)).collect(),
            max_output,
            max_ratio,
            input_total: 0,
            output_total: 0,
            stopped: None,
            undecided_input: Vec::new(),
            passthrough: false,
        }
    }

    pub(crate) fn stopped(&self) -> Option<DecodeStop> {
        self.stopped
    }

    /// Decodes `input`, passing decoded bytes to `out`. Returns the reason when decoding stopped
    /// in this call.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        if self.stopped.is_some() {
            return None;
        }
        if self.passthrough {
            self.input_total += input.len() as u64;
            return self.emit(input, out);
        }
        for step in input.chunks(DECODE_STEP_BYTES) {
            self.input_total += step.len() as u64;
            if self.output_total == 0 && self.undecided_input.len() + step.len() <= MAX_UNDECIDED_INPUT_BYTES {
                self.undecided_input.extend_from_slice(step);
            }
            if let Err(halt) = self.drive(0, step, out) {
                return self.halt(halt, out);
            }
        }
        None
    }

    /// Pulls layer `i` dry of what `input` gives, a chunk at a time, passing each chunk to the
    /// next layer (or to `out` after the last) before decoding more.
    fn drive(&mut self, i: usize, mut input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), Halt> {
        if i == self.layers.len() {
            return match self.emit(input, out) {
                Some(stop) => Err(Halt::Stopped(stop)),
                None => Ok(()),
            };
        }
        let mut chunk = [0u8; LAYER_CHUNK_BYTES];
        loop {
            let (consumed, produced) = self.layers[i].pull(input, &mut chunk).map_err(|()| Halt::Corrupt)?;
            input = input.get(consumed..).ok_or(Halt::Corrupt)?;
            if produced > 0 {
                self.drive(i + 1, chunk.get(..produced).ok_or(Halt::Corrupt)?, out)?;
            } else if consumed == 0 {
                // No progress: drained (no input left) or a decoder that refuses what it has.
                return if input.is_empty() { Ok(()) } else { Err(Halt::Corrupt) };
            }
        }
    }

    /// Ends the body. Every layer has already handed on all it could decode; a layer that is
    /// not at the end of its stream means the body was cut or corrupt.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        if self.stopped.is_some() || self.passthrough {
            return None;
        }
        if self.layers.iter().all(Layer::is_complete) {
            return None;
        }
        self.corrupt(out)
    }

    fn halt(&mut self, halt: Halt, out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        match halt {
            Halt::Corrupt => self.corrupt(out),
            // `emit` has already stopped the decoder.
            Halt::Stopped(stop) => Some(stop),
        }
    }

    /// A corrupt stream: before any output this means the body was not encoded at all.
    fn corrupt(&mut self, out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        if self.output_total == 0 && self.input_total == self.undecided_input.len() as u64 {
            self.passthrough = true;
            self.layers.clear();
            let held = std::mem::take(&mut self.undecided_input);
            return self.emit(&held, out);
        }
        self.stop(DecodeStop::Corrupt)
    }

    fn emit(&mut self, data: &[u8], out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        if self.output_total == 0 && !data.is_empty() {
            self.undecided_input = Vec::new();
        }
        let room = self.max_output.saturating_sub(self.output_total);
        let take = (data.len() as u64).min(room) as usize;
        out(&data[..take]);
        self.output_total += take as u64;
        if take < data.len() {
            return self.stop(DecodeStop::SizeLimit);
        }
        if self.output_total > RATIO_FLOOR_BYTES && self.output_total / self.input_total.max(1) > self.max_ratio {
            return self.stop(DecodeStop::RatioLimit);
        }
        None
    }

    fn stop(&mut self, why: DecodeStop) -> Option<DecodeStop> {
        self.stopped = Some(why);
        self.layers.clear();
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }
    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).expect("zlib");
        e.finish().expect("zlib")
    }
    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).expect("deflate");
        e.finish().expect("deflate")
    }
    fn brotli_enc(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).expect("br");
        }
        out
    }

    fn run(codings: &[Coding], body: &[u8], piece: usize) -> (Vec<u8>, Option<DecodeStop>) {
        let mut d = ContentDecoder::new(codings, 1 << 30, 2000);
        let mut out = Vec::new();
        let mut stop = None;
        for p in body.chunks(piece) {
            stop = stop.or(d.feed(p, &mut |b| out.extend_from_slice(b)));
        }
        stop = stop.or(d.finish(&mut |b| out.extend_from_slice(b)));
        (out, stop)
    }

    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog. 0123456789 The quick brown fox.";

    #[test]
    fn each_coding_round_trips_in_any_piece_size() {
        for piece in [1, 7, 4096] {
            assert_eq!(run(&[Coding::Gzip], &gzip(TEXT), piece), (TEXT.to_vec(), None));
            assert_eq!(run(&[Coding::Deflate], &zlib(TEXT), piece), (TEXT.to_vec(), None));
            assert_eq!(run(&[Coding::Deflate], &raw_deflate(TEXT), piece), (TEXT.to_vec(), None));
            assert_eq!(run(&[Coding::Brotli], &brotli_enc(TEXT), piece), (TEXT.to_vec(), None));
        }
    }

    #[test]
    fn stacked_codings_are_undone_last_applied_first() {
        // Content-Encoding: gzip, br  => gzip applied first, then brotli.
        let (codings, unknown, over) = parse_codings(b"gzip, br", 3);
        assert_eq!(codings, vec![Coding::Brotli, Coding::Gzip]);
        assert!(!unknown && !over);
        let body = brotli_enc(&gzip(TEXT));
        assert_eq!(run(&codings, &body, 100), (TEXT.to_vec(), None));
    }

    #[test]
    fn layer_limit_and_unknown_tokens_are_reported() {
        let (codings, unknown, over) = parse_codings(b"gzip,gzip,gzip,compress", 2);
        assert_eq!(codings.len(), 2);
        assert!(unknown && over);
    }

    #[test]
    fn corrupt_stream_keeps_what_decoded() {
        let mut body = gzip(&vec![b'a'; 100_000]);
        let cut = body.len() / 2;
        body.truncate(cut);
        let (out, stop) = run(&[Coding::Gzip], &body, 512);
        assert_eq!(stop, Some(DecodeStop::Corrupt));
        assert!(!out.is_empty() && out.len() < 100_000);
        assert!(out.iter().all(|&b| b == b'a'));
    }

    #[test]
    fn gzip_bomb_is_cut_by_the_ratio_cap_with_bounded_output() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let mut d = ContentDecoder::new(&[Coding::Gzip], 1 << 30, 100);
        let mut produced = 0u64;
        let mut stop = None;
        for p in bomb.chunks(1460) {
            stop = stop.or(d.feed(p, &mut |b| produced += b.len() as u64));
        }
        assert_eq!(stop, Some(DecodeStop::RatioLimit));
        // Stopped within one step of crossing the floor: far from the 64 MiB the bomb holds.
        assert!(produced < 4 << 20, "produced {produced}");
    }

    #[test]
    fn a_body_that_was_never_encoded_passes_through() {
        // "Content-Encoding: gzip" on plain text: browsers and Suricata show the text.
        assert_eq!(run(&[Coding::Gzip, Coding::Gzip], TEXT, 10), (TEXT.to_vec(), None));
    }

    #[test]
    fn odd_bytes_around_coding_names_are_ignored() {
        assert_eq!(parse_codings(b"\0gzip", 3).0, vec![Coding::Gzip]);
        assert_eq!(parse_codings(b"deflate\xa0", 3).0, vec![Coding::Deflate]);
    }

    #[test]
    fn size_cap_cuts_exactly() {
        let mut d = ContentDecoder::new(&[Coding::Gzip], 1000, 2000);
        let mut out = Vec::new();
        let stop = d.feed(&gzip(&[b'x'; 5000]), &mut |b| out.extend_from_slice(b));
        let stop = stop.or(d.finish(&mut |b| out.extend_from_slice(b)));
        assert_eq!(stop, Some(DecodeStop::SizeLimit));
        assert_eq!(out.len(), 1000);
    }

    /// Feeds `body` in TCP-sized pieces; returns (bytes out, largest single hand-over, stop).
    fn bomb(codings: &[Coding], body: &[u8], max_output: u64, max_ratio: u64) -> (u64, usize, Option<DecodeStop>) {
        let mut d = ContentDecoder::new(codings, max_output, max_ratio);
        let (mut produced, mut largest) = (0u64, 0usize);
        let mut stop = None;
        let mut sink = |b: &[u8]| {
            produced += b.len() as u64;
            largest = largest.max(b.len());
        };
        for p in body.chunks(1460) {
            stop = stop.or(d.feed(p, &mut sink));
        }
        stop = stop.or(d.finish(&mut sink));
        (produced, largest, stop)
    }

    #[test]
    fn brotli_bomb_is_cut_one_chunk_past_the_ratio_floor() {
        // 8 MiB of zeros in a few hundred bytes: one old 1 KiB step expanded all of it at once.
        let body = brotli_enc(&vec![0u8; 8 << 20]);
        assert!(body.len() < 2048, "{}", body.len());
        let (produced, largest, stop) = bomb(&[Coding::Brotli], &body, 1 << 30, 100);
        assert_eq!(stop, Some(DecodeStop::RatioLimit));
        assert_eq!(largest, LAYER_CHUNK_BYTES);
        assert_eq!(produced, RATIO_FLOOR_BYTES + LAYER_CHUNK_BYTES as u64);
    }

    #[test]
    fn stacked_gzip_bomb_is_cut_by_size_without_expanding_a_step() {
        // gzip of gzip: 1 KiB outer input became ~1 MiB of inner gzip, then ~1 GiB at once.
        let body = gzip(&gzip(&vec![0u8; 16 << 20]));
        let (produced, largest, stop) = bomb(&[Coding::Gzip, Coding::Gzip], &body, 3 << 20, u64::MAX);
        assert_eq!(stop, Some(DecodeStop::SizeLimit));
        assert_eq!(produced, 3 << 20);
        assert!(largest <= LAYER_CHUNK_BYTES, "{largest}");
        // The same stack with room for all of it decodes every byte.
        assert_eq!(bomb(&[Coding::Gzip, Coding::Gzip], &body, 1 << 30, u64::MAX), (16 << 20, LAYER_CHUNK_BYTES, None));
    }

    #[test]
    fn gzip_members_follow_each_other_and_trailing_bytes_are_ignored() {
        let mut body = gzip(b"first ");
        body.extend_from_slice(&gzip(b"second"));
        for piece in [1, 5, 1000] {
            assert_eq!(run(&[Coding::Gzip], &body, piece), (b"first second".to_vec(), None));
        }
        let mut trailing = gzip(TEXT);
        trailing.extend_from_slice(b"\r\n0\r\n");
        assert_eq!(run(&[Coding::Gzip], &trailing, 3), (TEXT.to_vec(), None));
    }

    #[test]
    fn gzip_optional_header_fields_are_skipped() {
        let mut e = flate2::GzBuilder::new()
            .filename("name.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4, 5])
            .write(Vec::new(), Compression::default());
        e.write_all(TEXT).expect("gzip");
        let with_fields = e.finish().expect("gzip");
        assert_eq!(with_fields[3], GZIP_FEXTRA | GZIP_FNAME | GZIP_FCOMMENT);
        for piece in [1, 2, 4096] {
            assert_eq!(run(&[Coding::Gzip], &with_fields, piece), (TEXT.to_vec(), None));
        }
        // FHCRC: two header CRC bytes after the fixed header (not checked).
        let mut with_crc = gzip(TEXT);
        with_crc[3] |= GZIP_FHCRC;
        with_crc.splice(10..10, [0xab, 0xcd]);
        assert_eq!(run(&[Coding::Gzip], &with_crc, 1), (TEXT.to_vec(), None));
    }

    #[test]
    fn gzip_cut_inside_its_trailer_is_incomplete() {
        let mut body = gzip(TEXT);
        body.truncate(body.len() - 3);
        assert_eq!(run(&[Coding::Gzip], &body, 7), (TEXT.to_vec(), Some(DecodeStop::Corrupt)));
    }

    #[test]
    fn deflate_decided_on_a_two_byte_boundary_decodes_the_held_byte() {
        // The first byte of a raw or zlib stream is held until the second arrives.
        for body in [zlib(TEXT), raw_deflate(TEXT)] {
            let mut d = ContentDecoder::new(&[Coding::Deflate], 1 << 20, 2000);
            let mut out = Vec::new();
            assert_eq!(d.feed(&body[..1], &mut |b| out.extend_from_slice(b)), None);
            assert_eq!(d.feed(&body[1..], &mut |b| out.extend_from_slice(b)), None);
            assert_eq!(d.finish(&mut |b| out.extend_from_slice(b)), None);
            assert_eq!(out, TEXT);
        }
    }
}
