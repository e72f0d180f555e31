//! An FTP data connection: the bytes of one transfer, extracted as a file.

use serde_json::Map;
use weir_core::{Anomaly, Artifact, Direction, StreamEvent, Timestamp};

use super::MAX_HELD_DATA_BYTES;
use super::eve::ftp_data_object;
use super::expect::Expectation;
use crate::emit::{AppEvent, Emit, ParserException};
use crate::files::{FileSink, OpenFile};

/// Bytes seen in one direction before the transfer command was known.
#[derive(Debug, Default)]
struct Held {
    bytes: Vec<u8>,
    /// Bytes not kept: capture gaps, or beyond [`MAX_HELD_DATA_BYTES`].
    lost: u64,
    ended: bool,
}

/// Per-flow state of an FTP data connection (`app_proto: "ftp-data"`).
#[derive(Debug)]
pub struct FtpDataState {
    expectation: Expectation,
    held: [Held; 2],
    file: Option<OpenFile>,
    /// The file's direction ended or the flow was finished: nothing more is written.
    done: bool,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

impl FtpDataState {
    /// Starts following a data flow that matched `expectation`. If its transfer command is not
    /// known yet, the flow's bytes are held until [`FtpDataState::update`] brings it.
    pub fn new(expectation: Expectation) -> FtpDataState {
        FtpDataState {
            expectation,
            held: Default::default(),
            file: None,
            done: false,
            error_raised: false,
        }
    }

    /// What the data flow is known to carry.
    pub fn expectation(&self) -> &Expectation {
        &self.expectation
    }

    /// The EVE `ftp_data` object (`filename`, `command`), for alerts on the data flow.
    pub fn eve_object(&self) -> serde_json::Value {
        ftp_data_object(&self.expectation)
    }

    /// A newer snapshot of this flow's expectation (the transfer command was sent, or the server
    /// refused it).
    pub fn update(
        &mut self,
        expectation: Expectation,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let had_transfer = self.expectation.transfer.is_some();
        if expectation.id != self.expectation.id || (had_transfer && expectation.transfer.is_none())
        {
            return;
        }
        let withdrawn = expectation.withdrawn;
        if !had_transfer {
            let transfer = expectation.transfer.clone();
            self.expectation = Expectation {
                withdrawn,
                transfer,
                ..self.expectation.clone()
            };
        } else {
            self.expectation.withdrawn |= withdrawn;
        }
        if had_transfer || self.done {
            return;
        }
        let Some(dir) = self.expectation.file_direction() else {
            return;
        };
        let held = std::mem::take(&mut self.held[dir.index()]);
        self.held = Default::default();
        if !held.bytes.is_empty() {
            self.write(dir, &held.bytes, ts, files);
        }
        if held.lost > 0 {
            self.gap(dir, held.lost, ts, files);
        }
        if held.ended {
            self.close(dir, ts, files, out);
        }
    }

    /// Consumes one event of one direction of the data flow.
    pub fn on_stream(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        if self.done {
            return;
        }
        let Some(file_dir) = self.expectation.file_direction() else {
            self.hold(dir, ev, ts, out);
            return;
        };
        if dir != file_dir {
            if let StreamEvent::Data(d) = ev
                && !d.is_empty()
            {
                out.anomaly(ts, Anomaly::app_layer("ftp-data.unexpected_direction"));
                // Data against the announced transfer's direction cannot belong to its file: the
                // app-layer error (as Suricata's ftp-data parser), once per flow.
                if !std::mem::replace(&mut self.error_raised, true) {
                    out.exception(ts, ParserException::Error);
                }
            }
            return;
        }
        match ev {
            StreamEvent::Data(data) => self.write(dir, data, ts, files),
            StreamEvent::Gap { len } => self.gap(dir, len, ts, files),
            StreamEvent::End => self.close(dir, ts, files, out),
        }
    }

    /// The flow is going away (timeout, eviction, end of capture): a file still open ends
    /// truncated; bytes held for a transfer command that never came are logged as a nameless
    /// file.
    pub fn finish(&mut self, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        if self.done {
            return;
        }
        if let Some(dir) = self.expectation.file_direction() {
            if let Some(f) = self.file.as_mut() {
                f.mark_truncated();
            }
            self.close(dir, ts, files, out);
            return;
        }
        // Which way the bytes went tells the direction of the unnamed transfer.
        let dir = if self.held[0].bytes.len() as u64 + self.held[0].lost
            >= self.held[1].bytes.len() as u64 + self.held[1].lost
        {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let held = std::mem::take(&mut self.held[dir.index()]);
        self.held = Default::default();
        if !held.bytes.is_empty() {
            self.write(dir, &held.bytes, ts, files);
            if held.lost > 0 {
                self.gap(dir, held.lost, ts, files);
            }
            if let Some(f) = self.file.as_mut()
                && !held.ended
            {
                f.mark_truncated();
            }
        }
        self.close(dir, ts, files, out);
    }

    fn hold(&mut self, dir: Direction, ev: StreamEvent<'_>, ts: Timestamp, out: &mut Emit) {
        let held = &mut self.held[dir.index()];
        match ev {
            StreamEvent::Data(data) => {
                let room = MAX_HELD_DATA_BYTES.saturating_sub(held.bytes.len());
                let take = room.min(data.len());
                held.bytes.extend_from_slice(&data[..take]);
                if take < data.len() {
                    if held.lost == 0 {
                        out.anomaly(ts, Anomaly::app_layer("ftp-data.held_bytes_limit"));
                    }
                    held.lost = held.lost.saturating_add((data.len() - take) as u64);
                }
            }
            StreamEvent::Gap { len } => held.lost = held.lost.saturating_add(len),
            StreamEvent::End => held.ended = true,
        }
    }

    fn file_mut(&mut self, files: &mut dyn FileSink) -> &mut OpenFile {
        let name = self
            .expectation
            .transfer
            .as_ref()
            .map(|t| t.argument.clone())
            .unwrap_or_default();
        self.file
            .get_or_insert_with(|| OpenFile::open(files, &name, Some(0), 1))
    }

    fn write(&mut self, _dir: Direction, data: &[u8], _ts: Timestamp, files: &mut dyn FileSink) {
        if data.is_empty() {
            return;
        }
        self.file_mut(files).write(files, data);
    }

    fn gap(&mut self, _dir: Direction, len: u64, _ts: Timestamp, files: &mut dyn FileSink) {
        self.file_mut(files).gap(files, len);
    }

    fn close(&mut self, dir: Direction, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        self.done = true;
        // A transfer that moved no byte (refused, or an empty listing) leaves no file.
        let Some(file) = self.file.take() else { return };
        // After REST only the tail of the named file crossed the wire.
        let complete = self
            .expectation
            .transfer
            .as_ref()
            .is_some_and(|t| t.rest == 0);
        let closed = file.close(files, complete);
        let ftp_data = ftp_data_object(&self.expectation);

        let mut fields = Map::new();
        fields.insert("ftp_data".into(), ftp_data.clone());
        fields.insert("fileinfo".into(), closed.fileinfo());
        out.event(AppEvent {
            ts,
            event_type: "fileinfo",
            tx_id: Some(0),
            direction: dir,
            fields,
        });

        let mut fields = Map::new();
        fields.insert("ftp_data".into(), ftp_data);
        out.event(AppEvent {
            ts,
            event_type: "ftp_data",
            tx_id: Some(0),
            direction: dir,
            fields,
        });
        out.artifact(ts, Some(0), Artifact::File(closed.artifact));
    }
}
