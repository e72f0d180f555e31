//! SMB1/2/3 over NBSS on both directions of a stream from the input, with small read and write
//! extraction limits, and the flush a flow end does.
//!
//! Invariants: framing buffers stay within their bound; extracted file bytes never exceed the
//! bytes given; files are written and closed through open handles only and none stays open
//! after the flush; every EVE body serialises.
#![no_main]
// Configs are spelled out in full but still end in `..Default` so new fields do not break the build.
#![allow(clippy::needless_update)]

use libfuzzer_sys::fuzz_target;
use weir_core::Timestamp;
use weir_extract::smb::{SmbConfig, SmbState, MAX_BUFFERED_RECORD_BYTES, STREAM_HEAD_BYTES};
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, CheckingFileSink, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let cfg = SmbConfig { max_read_size: u32::from(input.u16()), max_write_size: u32::from(input.u16()), ..SmbConfig::default() };
    let mut smb = SmbState::new(&cfg);
    let mut files = CheckingFileSink::new(u64::MAX);
    let given = stream_steps(&mut input, |dir, ev, ts| {
        let mut out = Emit::default();
        smb.on_stream(dir, ev, ts, &mut files, &mut out);
        check_emit(&out);
        assert!(
            smb.buffered() <= 2 * (MAX_BUFFERED_RECORD_BYTES + STREAM_HEAD_BYTES),
            "SMB buffers {} bytes",
            smb.buffered()
        );
    });
    let mut out = Emit::default();
    smb.flush(Timestamp::from_nanos(u64::MAX / 2), &mut files, &mut out);
    check_emit(&out);
    let total = given[0] + given[1];
    assert!(files.written <= total, "extracted {} bytes of {total} given", files.written);
    assert_eq!(files.open_files(), 0, "file left open after flush");
});
