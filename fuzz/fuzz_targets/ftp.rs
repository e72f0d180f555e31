//! FTP: the control connection on both directions of a stream from the input, then every data
//! connection it announced (PORT/PASV/EPRT/EPSV and a transfer command) fed with the rest of the
//! input as its file.
//!
//! Invariants: transactions held stay within the pending and retained limits; a data connection
//! never extracts more bytes than it was given; files are written and closed through open
//! handles only; every EVE body serialises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::{Direction, StreamEvent, Timestamp};
use weir_extract::ftp::{FtpDataState, FtpState, MAX_PENDING_COMMANDS, MAX_RETAINED_TRANSACTIONS};
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, CheckingFileSink, Input};

fuzz_target!(|data: &[u8]| {
    // The control stream and the data stream are the two halves of the input, split at the
    // first 0xff 0x00 pair (or none: all control).
    let split = data.windows(2).position(|w| w == [0xff, 0x00]).unwrap_or(data.len());
    let (control, file) = (&data[..split], data.get(split + 2..).unwrap_or(&[]));
    let mut input = Input::new(control);
    let take_finished = input.u8() & 1 == 1;
    let mut ftp = FtpState::new();
    let mut expectations = Vec::new();
    stream_steps(&mut input, |dir, ev, ts| {
        let mut out = Emit::default();
        ftp.on_stream(dir, ev, ts, &mut out);
        check_emit(&out);
        expectations.extend(ftp.take_expectations());
        let held = ftp.transactions().count();
        assert!(held <= MAX_PENDING_COMMANDS + MAX_RETAINED_TRANSACTIONS, "{held} FTP transactions held");
        if take_finished {
            ftp.take_finished();
        }
    });
    let mut out = Emit::default();
    ftp.flush(Timestamp::from_nanos(u64::MAX / 2), &mut out);
    check_emit(&out);

    // Each announced data connection (its first snapshot, then its later ones) carries the file.
    let mut files = CheckingFileSink::new(u64::MAX);
    let ts = Timestamp::from_nanos(u64::MAX / 2);
    let Some(first) = expectations.first().cloned() else { return };
    let mut data_flow = FtpDataState::new(first.clone());
    let mut given = 0u64;
    for (i, piece) in file.chunks(97).enumerate() {
        if let Some(e) = expectations.iter().filter(|e| e.id == first.id).nth(i) {
            data_flow.update(e.clone(), ts, &mut files, &mut out);
        }
        let dir = if i % 7 == 6 { Direction::ToClient } else { Direction::ToServer };
        data_flow.on_stream(dir, StreamEvent::Data(piece), ts, &mut files, &mut out);
        given += piece.len() as u64;
    }
    for e in expectations.iter().filter(|e| e.id == first.id) {
        data_flow.update(e.clone(), ts, &mut files, &mut out);
    }
    data_flow.on_stream(Direction::ToServer, StreamEvent::End, ts, &mut files, &mut out);
    data_flow.finish(ts, &mut files, &mut out);
    check_emit(&out);
    assert!(files.written <= given, "data connection extracted {} bytes of {given} given", files.written);
    assert_eq!(files.open_files(), 0, "file left open after finish");
});
