//! Content-Encoding removal (gzip, deflate as zlib or raw, brotli, stacked), streaming and capped.
//!
//! Input is fed in small steps so a decompression bomb can never expand more than one step's
//! worth before the caps are checked: memory stays bounded whatever the ratio.

use std::io::Write;

use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Compressed bytes fed to the decoders per step. At deflate's maximum ratio (about 1032:1) one
/// step expands to at most ~1 MiB.
const DECODE_STEP_BYTES: usize = 1024;

/// Decompressed output below this size is never judged by the ratio cap: small, highly
/// compressible bodies (a page of zeros) are normal.
const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// Brotli's internal window buffer for the streaming decoder.
const BROTLI_BUFFER_BYTES: usize = 4096;

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

enum Layer {
    /// "deflate" is zlib-wrapped by the standard and raw by some servers; browsers accept both,
    /// so the first two bytes decide.
    DeflateUndecided(Vec<u8>),
    Gzip(MultiGzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    /// The stream ended; later input is ignored, as browsers ignore trailing bytes.
    Done,
}

fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

impl Layer {
    fn new(c: Coding) -> Layer {
        match c {
            Coding::Gzip => Layer::Gzip(MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Layer::DeflateUndecided(Vec::new()),
            Coding::Brotli => Layer::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), BROTLI_BUFFER_BYTES))),
        }
    }

    /// Feeds `input`, returning what came out. `Err` on a corrupt stream.
    fn feed(&mut self, input: &[u8]) -> Result<Vec<u8>, ()> {
        if let Layer::DeflateUndecided(held) = self {
            held.extend_from_slice(input);
            if held.len() < 2 {
                return Ok(Vec::new());
            }
            let held = std::mem::take(held);
            *self = if looks_like_zlib(&held) {
                Layer::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Layer::Raw(DeflateDecoder::new(Vec::new()))
            };
            return self.feed(&held);
        }
        let mut rest = input;
        while !rest.is_empty() {
            let n = match self {
                Layer::Gzip(d) => d.write(rest),
                Layer::Zlib(d) => d.write(rest),
                Layer::Raw(d) => d.write(rest),
                Layer::Brotli(d) => d.write(rest),
                Layer::DeflateUndecided(_) | Layer::Done => return Ok(Vec::new()),
            }
            .map_err(|_| ())?;
            if n == 0 {
                let out = self.take_output();
                *self = Layer::Done;
                return Ok(out);
            }
            rest = &rest[n..];
        }
        Ok(self.take_output())
    }

    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Layer::Gzip(d) => std::mem::take(d.get_mut()),
            Layer::Zlib(d) => std::mem::take(d.get_mut()),
            Layer::Raw(d) => std::mem::take(d.get_mut()),
            Layer::Brotli(d) => std::mem::take(d.get_mut()),
            Layer::DeflateUndecided(_) | Layer::Done => Vec::new(),
        }
    }

    /// Ends the stream; `Err` when it was incomplete.
    fn finish(&mut self) -> Result<Vec<u8>, ()> {
        let r = match self {
            Layer::Gzip(d) => d.try_finish().map_err(|_| ()),
            Layer::Zlib(d) => d.try_finish().map_err(|_| ()),
            Layer::Raw(d) => d.try_finish().map_err(|_| ()),
            Layer::Brotli(d) => d.close().map_err(|_| ()),
            Layer::DeflateUndecided(held) => {
                if held.is_empty() {
                    Ok(())
                } else {
                    Err(())
                }
            }
            Layer::Done => Ok(()),
        };
        let out = self.take_output();
        r.map(|()| out)
    }
}

/// Why decoding stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeStop {
    Corrupt,
    SizeLimit,
    RatioLimit,
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
            let mut data = step.to_vec();
            for i in 0..self.layers.len() {
                match self.layers[i].feed(&data) {
                    Ok(next) => data = next,
                    Err(()) => return self.corrupt(out),
                }
                if data.is_empty() {
                    break;
                }
            }
            if let Some(stop) = self.emit(&data, out) {
                return Some(stop);
            }
        }
        None
    }

    /// Flushes the decoders at the end of the body. Returns the reason when the stream was
    /// incomplete or corrupt.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> Option<DecodeStop> {
        if self.stopped.is_some() || self.passthrough {
            return None;
        }
        for i in 0..self.layers.len() {
            let mut data = match self.layers[i].finish() {
                Ok(d) => d,
                Err(()) => return self.corrupt(out),
            };
            for j in i + 1..self.layers.len() {
                if data.is_empty() {
                    break;
                }
                data = match self.layers[j].feed(&data) {
                    Ok(d) => d,
                    Err(()) => return self.corrupt(out),
                };
            }
            if let Some(stop) = self.emit(&data, out) {
                return Some(stop);
            }
        }
        None
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
}
