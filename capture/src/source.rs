//! Capture files and directories of them, read in order as one capture.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::buffer::ReadBuffer;
use crate::error::{CaptureError, CaptureWarning};
use crate::reader::{FileReader, Sniffed, WarningLog, sniff};
use crate::{CaptureStats, PacketSource, READ_BUFFER_LEN, RawPacket, SourcePos};

/// Packets from pcap and pcapng files, read one after another as one capture.
///
/// Each path given to [`FileSource::open`] is a file or a directory. A directory stands for the
/// regular files directly in it (not in its subdirectories, as Suricata's pcap-file mode does),
/// in byte order of their names; hidden files (names starting with `.`) are ignored, and files
/// that are not captures are skipped with a warning. A file named explicitly must be a capture.
///
/// Files are streamed through one buffer of [`READ_BUFFER_LEN`] bytes, one file open at a
/// time, so memory does not grow with file size.
pub struct FileSource {
    files: Vec<PathBuf>,
    sizes: Vec<u64>,
    next_file: usize,
    current: Option<(usize, FileReader<File>)>,
    buf: ReadBuffer,
    warnings: WarningLog,
    stats: CaptureStats,
    total_bytes: u64,
    /// Sizes of the files already finished.
    finished_bytes: u64,
}

impl FileSource {
    /// Lists and checks every input: each file must exist and be a pcap or pcapng file, and a
    /// classic pcap must have a supported link type (pcapng interfaces are only known while
    /// reading). Nothing is read beyond the file headers yet.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Self, CaptureError> {
        if paths.is_empty() {
            return Err(CaptureError::NoInput);
        }
        let mut warnings = WarningLog::default();
        let mut files = Vec::new();
        let mut sizes = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let meta = fs::metadata(path).map_err(|source| CaptureError::Open { path: path.to_path_buf(), source })?;
            if meta.is_dir() {
                let before = files.len();
                let mut skipped: Option<(usize, PathBuf)> = None;
                for file in directory_files(path)? {
                    match check_file(&file)? {
                        (Sniffed::NotACapture, _) => match &mut skipped {
                            Some((count, _)) => *count += 1,
                            None => skipped = Some((1, file)),
                        },
                        (_, size) => {
                            files.push(file);
                            sizes.push(size);
                        }
                    }
                }
                if let Some((count, example)) = skipped {
                    warnings.push(CaptureWarning::NotCapturesSkipped { dir: path.to_path_buf(), count, example });
                }
                if files.len() == before {
                    return Err(CaptureError::NoCaptures { dir: path.to_path_buf() });
                }
            } else {
                match check_file(path)? {
                    (Sniffed::NotACapture, _) => return Err(CaptureError::NotACapture { path: path.to_path_buf() }),
                    (_, size) => {
                        files.push(path.to_path_buf());
                        sizes.push(size);
                    }
                }
            }
        }
        let total_bytes = sizes.iter().sum();
        Ok(FileSource {
            files,
            sizes,
            next_file: 0,
            current: None,
            buf: ReadBuffer::new(READ_BUFFER_LEN),
            warnings,
            stats: CaptureStats::default(),
            total_bytes,
            finished_bytes: 0,
        })
    }

    /// The capture files, in reading order; [`SourcePos::file_index`] indexes this list.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Size of all the files, measured at open: the 100% of a progress bar.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Bytes read so far, out of [`FileSource::total_bytes`].
    pub fn bytes_read(&self) -> u64 {
        let current = self.current.as_ref().map_or(0, |_| self.buf.consumed());
        (self.finished_bytes + current).min(self.total_bytes)
    }

    /// Warnings collected so far (at most [`MAX_WARNINGS`](crate::MAX_WARNINGS)), in order.
    pub fn warnings(&self) -> &[CaptureWarning] {
        &self.warnings.list
    }

    /// Warnings not kept because the list was full.
    pub fn suppressed_warnings(&self) -> u64 {
        self.warnings.suppressed
    }

    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    fn finish_current(&mut self) {
        if let Some((index, _)) = self.current.take() {
            self.finished_bytes += self.sizes[index];
            self.stats.files_done += 1;
        }
    }
}

impl PacketSource for FileSource {
    /// The next packet of the capture. An `Err` ends the file it concerns; calling again goes on
    /// with the next file.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                let index = self.next_file;
                self.next_file += 1;
                self.buf.reset();
                let opened = File::open(path)
                    .map_err(|source| CaptureError::Open { path: path.clone(), source })
                    .and_then(|file| FileReader::open(path, file, &mut self.buf));
                match opened {
                    Ok(reader) => self.current = Some((index, reader)),
                    Err(e) => {
                        self.finished_bytes += self.sizes[index];
                        self.stats.files_done += 1;
                        return Err(e);
                    }
                }
            }
            let Some((index, reader)) = self.current.as_mut() else {
                continue;
            };
            let index = *index;
            let path = &self.files[index];
            match reader.next(path, &mut self.buf, &mut self.warnings, &mut self.stats) {
                Ok(Some(meta)) => {
                    self.stats.packets += 1;
                    return Ok(Some(RawPacket {
                        ts: meta.ts,
                        link: meta.link,
                        data: &self.buf.storage()[meta.range],
                        orig_len: meta.orig_len,
                        source: SourcePos { file_index: index, packet_number: meta.number },
                    }));
                }
                Ok(None) => self.finish_current(),
                Err(e) => {
                    self.finish_current();
                    return Err(e);
                }
            }
        }
    }
}

/// The regular files directly in `dir`, hidden ones left out, sorted by name.
fn directory_files(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let open_err = |source| CaptureError::Open { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(open_err)? {
        let entry = entry.map_err(open_err)?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        // fs::metadata follows symlinks, so a link to a capture counts as a file.
        if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// What the file is, by its header, and its size.
fn check_file(path: &Path) -> Result<(Sniffed, u64), CaptureError> {
    let open_err = |source| CaptureError::Open { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    let mut head = [0u8; 24];
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(open_err(e)),
        }
    }
    Ok((sniff(path, &head[..len])?, size))
}
