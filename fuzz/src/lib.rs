//! Shared pieces of the fuzz targets: reading structured steps out of the fuzzer's bytes, sinks
//! that check what parsers store against their caps, and the driver that feeds one parser a
//! sequence of stream events.
//!
//! Every target asserts invariants; an assertion failing is a finding, like a panic.

use std::collections::HashMap;

use weir_core::{Direction, StreamEvent, Timestamp};
use weir_extract::files::{FileError, FileSink, StoreHandle};
use weir_extract::mailstore::{MailSink, MailStoreError};
use weir_extract::Emit;

/// Reads the fuzzer's bytes front to back; past the end every read yields zeros, so any input is
/// a valid program.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.bytes.len())
    }
}

/// A file sink that keeps only sizes and checks the sink contract as parsers use it: writes and
/// closes go to open handles only, and no file grows past `max_file_bytes`.
pub struct CheckingFileSink {
    pub max_file_bytes: u64,
    next: u64,
    open: HashMap<u64, u64>,
    /// Bytes written over all files.
    pub written: u64,
    pub closed: u64,
}

impl CheckingFileSink {
    pub fn new(max_file_bytes: u64) -> Self {
        CheckingFileSink { max_file_bytes, next: 0, open: HashMap::new(), written: 0, closed: 0 }
    }

    pub fn open_files(&self) -> usize {
        self.open.len()
    }
}

impl FileSink for CheckingFileSink {
    fn open(&mut self) -> Result<StoreHandle, FileError> {
        self.next += 1;
        self.open.insert(self.next, 0);
        Ok(StoreHandle(self.next))
    }

    fn write(&mut self, handle: StoreHandle, data: &[u8]) -> Result<(), FileError> {
        let size = self.open.get_mut(&handle.0).expect("write to a handle that is not open");
        *size += data.len() as u64;
        assert!(*size <= self.max_file_bytes, "file {} grew to {} bytes, cap {}", handle.0, size, self.max_file_bytes);
        self.written += data.len() as u64;
        Ok(())
    }

    fn close(&mut self, handle: StoreHandle, _sha256: &[u8; 32]) -> Result<bool, FileError> {
        assert!(self.open.remove(&handle.0).is_some(), "close of a handle that is not open");
        self.closed += 1;
        Ok(true)
    }

    fn discard(&mut self, handle: StoreHandle) {
        self.open.remove(&handle.0);
    }
}

/// A mail sink that checks every stored message against the message cap.
pub struct CheckingMailSink {
    pub max_message_bytes: usize,
    pub stored: u64,
    /// Every message stored, in order (fuzz inputs are small).
    pub messages: Vec<Vec<u8>>,
}

impl CheckingMailSink {
    pub fn new(max_message_bytes: usize) -> Self {
        CheckingMailSink { max_message_bytes, stored: 0, messages: Vec::new() }
    }
}

impl MailSink for CheckingMailSink {
    fn store(&mut self, _sha256: &[u8; 32], message: &[u8]) -> Result<bool, MailStoreError> {
        assert!(
            message.len() <= self.max_message_bytes,
            "stored a {}-byte message, cap {}",
            message.len(),
            self.max_message_bytes
        );
        self.stored += 1;
        self.messages.push(message.to_vec());
        Ok(true)
    }
}

/// Splits the input into stream events: each step is a header byte (bit 0: direction; bits 1-2:
/// data, data, gap, end; bits 3-7 with the next byte: the data length or gap size) then the data.
/// Calls `feed` for each step; returns the data bytes given per direction.
pub fn stream_steps(input: &mut Input<'_>, mut feed: impl FnMut(Direction, StreamEvent<'_>, Timestamp)) -> [u64; 2] {
    let mut given = [0u64; 2];
    let mut ns = 1_000_000_000u64;
    while !input.is_empty() {
        let head = input.u8();
        let dir = if head & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let len = (usize::from(head >> 3) << 8) | usize::from(input.u8());
        let ev = match (head >> 1) & 3 {
            0 | 1 => {
                let data = input.take(len);
                given[dir.index()] += data.len() as u64;
                StreamEvent::Data(data)
            }
            2 => StreamEvent::Gap { len: len as u64 + 1 },
            _ => StreamEvent::End,
        };
        ns += 1_000_000;
        feed(dir, ev, Timestamp::from_nanos(ns));
    }
    given
}

/// Every event, anomaly and artifact a parser emitted must serialise (EVE is written from them).
pub fn check_emit(out: &Emit) {
    for ev in &out.events {
        assert!(!ev.event_type.is_empty());
        serde_json::to_string(&ev.fields).expect("EVE fields serialise");
    }
    for (_, anomaly) in &out.anomalies {
        assert!(!anomaly.event.is_empty());
    }
}
