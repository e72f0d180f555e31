//! Live capture from a network interface through libpcap.
//!
//! ```no_run
//! use weir_capture::live::{LiveOptions, LivePoll, LiveSource};
//!
//! let mut options = LiveOptions::new("eth0");
//! options.filter = Some("not port 22".into());
//! let mut source = LiveSource::open(options)?; // needs CAP_NET_RAW; drops it afterwards
//! let stop = source.stop_handle(); // give this to the signal handler
//! loop {
//!     match source.poll()? {
//!         LivePoll::Packet(packet) => { /* decode packet.data */ }
//!         // Nothing arrived within the read timeout: advance idle timers, print warnings.
//!         LivePoll::Idle => source.take_warnings().iter().for_each(|w| eprintln!("warning: {w}")),
//!         LivePoll::Stopped => break,
//!     }
//! }
//! println!("{:?}", source.kernel_stats()?);
//! # Ok::<(), weir_capture::live::LiveError>(())
//! ```
//!
//! # Waiting, finishing and stopping
//!
//! [`LiveSource::poll`] blocks for at most about the read timeout
//! ([`LiveOptions::read_timeout`]) and says which of three things happened: a packet, nothing yet
//! ([`LivePoll::Idle`]), or the source was stopped through its [`StopHandle`]. libpcap reads in
//! nonblocking mode and `poll` waits on the socket itself: a blocking read on Linux's TPACKET_V3
//! ring waits until a packet arrives, however long, whatever the timeout. A live source never
//! finishes by itself, so [`PacketSource::next_packet`] returns `Ok(None)` only after a stop;
//! it waits through idle periods and copies each packet once into the source's own buffer (a
//! borrow cannot be handed out from a loop that retries the read). `poll` is the zero-copy path
//! and the one to use when idle time matters (flow timeouts on a quiet link).
//!
//! # When the interface goes away
//!
//! A link that goes down (cable, `ip link set down`) is not an error on Linux: packets stop and
//! resume on the same handle. The source notices through the interface's `operstate` and logs a
//! [`LiveWarning::LinkDown`] and then [`LiveWarning::LinkUp`]. A read that fails (the interface
//! was removed: a USB adapter unplugged, a driver reloaded, a veth deleted) puts the source into
//! retry: it closes the handle and reopens the interface by name after [`FIRST_RETRY_DELAY`],
//! doubling the delay up to [`MAX_RETRY_DELAY`], with a [`LiveWarning::CaptureFailed`] per
//! attempt and [`LiveWarning::Resumed`] on success, until it succeeds or is stopped. Reopening
//! needs CAP_NET_RAW again, which [`Privileges::RetainNetRaw`] (the default) keeps for this; with
//! [`Privileges::DropAll`] a failed read ends the run with [`LiveError::InterfaceLost`] instead.
//! Warnings are collected (at most [`MAX_WARNINGS`](crate::MAX_WARNINGS) between drains) for the
//! caller to print with [`LiveSource::take_warnings`]; a library does not write to stderr.
//!
//! # Several sources
//!
//! One `LiveSource` is one libpcap handle and is `Send`: move it to the worker that reads it.
//! To feed N workers, open N sources (one per interface, or later one per member of an
//! AF_PACKET fanout group) with [`Privileges::Keep`], each with its own
//! [`LiveOptions::source_index`] (reported as [`SourcePos::file_index`]), then call
//! [`drop_privileges`] once before spawning the workers.

mod error;
mod privileges;
mod stats;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcap::{Active, Capture};
use weir_core::{LinkType, Timestamp};

use crate::{CaptureError, MAX_PACKET_LEN, MAX_WARNINGS, PacketSource, RawPacket, SourcePos};

pub use error::{LiveError, LiveWarning, MAX_LISTED_INTERFACES};
pub use privileges::{Privileges, drop_privileges};
pub use stats::{LiveStats, LiveStatsHandle};

use stats::KernelCounter;

/// How long one read waits for packets before reporting [`LivePoll::Idle`]. Also the longest a
/// stop request waits to be noticed, and on Linux how long a partly filled kernel block is held
/// back before delivery.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Longest accepted read timeout: beyond it shutdown and idle processing would lag noticeably.
pub const MAX_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Kernel capture buffer per source, in bytes. libpcap's default (2 MB) holds about 20 ms of a
/// busy 1 Gbit/s link; this holds over half a second, to ride out a slow stretch of parsing.
pub const DEFAULT_BUFFER_BYTES: u32 = 64 * 1024 * 1024;

/// Largest accepted kernel buffer: libpcap takes an `int`, and the kernel memory is pinned.
pub const MAX_BUFFER_BYTES: u32 = 1024 * 1024 * 1024;

/// Delay before the first attempt to reopen an interface whose read failed.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The retry delay doubles per failed attempt up to this, so an interface that comes back is
/// noticed within it, and a missing one costs one attempt and one warning per period.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How often kernel counters and the link state are read and published to
/// [`LiveStatsHandle`]s. `pcap_stats` is a system call, so not once per packet.
pub const STATS_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Reads between clock checks for [`STATS_REFRESH_INTERVAL`] while packets flow.
const POLLS_PER_CLOCK_CHECK: u32 = 1024;

/// How to open an interface. [`LiveOptions::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// Interface name, as `ip link` shows it (`any` for all interfaces, as cooked frames).
    pub interface: String,
    /// See traffic not addressed to this host, as a SPAN port delivers it. Default on; ignored
    /// for `any`, which cannot be promiscuous.
    pub promiscuous: bool,
    /// Bytes kept of each packet, 1 to [`MAX_PACKET_LEN`] (the default, which keeps every
    /// packet whole).
    pub snaplen: u32,
    /// See [`DEFAULT_READ_TIMEOUT`]; 1 ms to [`MAX_READ_TIMEOUT`].
    pub read_timeout: Duration,
    /// Kernel buffer; see [`DEFAULT_BUFFER_BYTES`]. At least `snaplen`, at most
    /// [`MAX_BUFFER_BYTES`].
    pub buffer_bytes: u32,
    /// A capture filter in libpcap syntax (as tcpdump takes), applied in the kernel.
    pub filter: Option<String>,
    /// What to do with capabilities once the handle is open.
    pub privileges: Privileges,
    /// Which of several sources this is, reported as [`SourcePos::file_index`].
    pub source_index: usize,
}

impl LiveOptions {
    pub fn new(interface: impl Into<String>) -> Self {
        LiveOptions {
            interface: interface.into(),
            promiscuous: true,
            snaplen: MAX_PACKET_LEN as u32,
            read_timeout: DEFAULT_READ_TIMEOUT,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            filter: None,
            privileges: Privileges::default(),
            source_index: 0,
        }
    }
}

/// What one [`LiveSource::poll`] saw.
#[derive(Debug)]
pub enum LivePoll<'a> {
    /// A packet, borrowed from libpcap's buffer until the next poll.
    Packet(RawPacket<'a>),
    /// No packet within the read timeout, or the source is waiting to retry a failed
    /// interface. Not the end: poll again.
    Idle,
    /// [`StopHandle::stop`] was called. Every later poll says so too.
    Stopped,
}

/// Asks a [`LiveSource`] to stop, from any thread (a signal handler's, typically). The source
/// notices within one read timeout.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Packets from one network interface. See the [module documentation](self).
pub struct LiveSource {
    reader: Reader,
    /// [`PacketSource::next_packet`]'s copy of the current packet.
    copied: Vec<u8>,
}

/// Everything but the copy buffer, so that a packet borrowed from here can be copied there.
struct Reader {
    options: LiveOptions,
    /// `None` only between closing a failed handle and reopening it.
    handle: Option<Capture<Active>>,
    link: LinkType,
    /// Packets numbered from 1, across reopenings.
    packet_number: u64,
    stop: StopHandle,
    stats: LiveStats,
    received: KernelCounter,
    dropped: KernelCounter,
    if_dropped: KernelCounter,
    published: LiveStatsHandle,
    last_refresh: Instant,
    polls_since_clock_check: u32,
    refresh_wanted: bool,
    /// The last read found nothing, so the next one first waits for the socket to be readable.
    ring_empty: bool,
    failure: Option<Failure>,
    link_down_since: Option<Instant>,
    warnings: Vec<LiveWarning>,
    suppressed_warnings: u64,
}

/// A failed read and the retries since.
#[derive(Debug)]
struct Failure {
    since: Instant,
    reason: String,
    /// Reopen attempts made so far.
    attempts: u32,
    delay: Duration,
    retry_at: Instant,
}

impl LiveSource {
    /// Opens `options.interface` for capture, applies the filter, and then applies
    /// `options.privileges` (by default every capability but a permitted CAP_NET_RAW is dropped;
    /// see [`drop_privileges`] for the thread caveat).
    pub fn open(options: LiveOptions) -> Result<LiveSource, LiveError> {
        check_options(&options)?;
        let (handle, link) = open_handle(&options)?;
        drop_privileges(options.privileges)?;
        let now = Instant::now();
        Ok(LiveSource {
            reader: Reader {
                options,
                handle: Some(handle),
                link,
                packet_number: 0,
                stop: StopHandle::default(),
                stats: LiveStats::default(),
                received: KernelCounter::default(),
                dropped: KernelCounter::default(),
                if_dropped: KernelCounter::default(),
                published: LiveStatsHandle::default(),
                last_refresh: now,
                polls_since_clock_check: 0,
                refresh_wanted: false,
                ring_empty: false,
                failure: None,
                link_down_since: None,
                warnings: Vec::new(),
                suppressed_warnings: 0,
            },
            copied: Vec::new(),
        })
    }

    /// Waits up to about one read timeout for the next packet. See [`LivePoll`].
    ///
    /// Errors end the run: [`LiveError::InterfaceLost`] under [`Privileges::DropAll`]. Other
    /// trouble reading is retried and reported through [`LiveSource::take_warnings`].
    pub fn poll(&mut self) -> Result<LivePoll<'_>, LiveError> {
        self.reader.poll()
    }

    /// The interface's link type (of the current handle, should a reopened one differ).
    pub fn link_type(&self) -> LinkType {
        self.reader.link
    }

    pub fn options(&self) -> &LiveOptions {
        &self.reader.options
    }

    /// A handle for another thread to stop this source.
    pub fn stop_handle(&self) -> StopHandle {
        self.reader.stop.clone()
    }

    /// A handle for another thread to read this source's counters.
    pub fn stats_handle(&self) -> LiveStatsHandle {
        self.reader.published.clone()
    }

    /// The counters now, with the kernel's read fresh (one `pcap_stats` call). Also publishes
    /// them to the [`LiveStatsHandle`]s.
    pub fn kernel_stats(&mut self) -> Result<LiveStats, LiveError> {
        self.reader.read_kernel_stats()?;
        self.reader.published.publish(&self.reader.stats);
        Ok(self.reader.stats)
    }

    /// Warnings since the last call, oldest first. At most [`MAX_WARNINGS`] are kept between
    /// calls; the rest are only counted ([`LiveSource::suppressed_warnings`]).
    pub fn take_warnings(&mut self) -> Vec<LiveWarning> {
        std::mem::take(&mut self.reader.warnings)
    }

    /// Warnings not kept because nobody took them in time.
    pub fn suppressed_warnings(&self) -> u64 {
        self.reader.suppressed_warnings
    }
}

impl PacketSource for LiveSource {
    /// The next packet, waiting as long as it takes; `Ok(None)` once the source was stopped.
    /// Costs one copy per packet; [`LiveSource::poll`] does not.
    ///
    /// Errors are [`LiveError`]s carried as [`CaptureError::Open`] with the interface as path.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        let packet = loop {
            match self.reader.poll() {
                Ok(LivePoll::Packet(p)) => {
                    self.copied.clear();
                    self.copied.extend_from_slice(p.data);
                    break RawPacket { data: &[], ..p };
                }
                Ok(LivePoll::Idle) => continue,
                Ok(LivePoll::Stopped) => return Ok(None),
                Err(e) => {
                    let path = self.reader.options.interface.clone().into();
                    return Err(CaptureError::Open { path, source: io::Error::other(e.cause()) });
                }
            }
        };
        Ok(Some(RawPacket { data: &self.copied, ..packet }))
    }
}

impl Reader {
    fn poll(&mut self) -> Result<LivePoll<'_>, LiveError> {
        if self.stop.is_stopped() {
            return Ok(LivePoll::Stopped);
        }
        self.polls_since_clock_check += 1;
        if self.refresh_wanted || self.polls_since_clock_check >= POLLS_PER_CLOCK_CHECK {
            self.polls_since_clock_check = 0;
            self.refresh_wanted = false;
            if self.last_refresh.elapsed() >= STATS_REFRESH_INTERVAL {
                self.refresh();
            }
        }
        if self.failure.is_some() && !self.retry()? {
            return Ok(LivePoll::Idle);
        }
        let Some(handle) = self.handle.as_mut() else {
            return Ok(LivePoll::Idle);
        };
        if self.ring_empty {
            // Readable, timed out or failed, the read below follows: libpcap notices a vanished
            // interface only on a read some time after the socket reported ENETDOWN, and after
            // that report the socket may never become readable again.
            if let Err(rustix::io::Errno::INTR) = wait_readable(handle, self.options.read_timeout) {
                // A signal cut the wait short: report idle, the caller may want to check flags.
                return Ok(LivePoll::Idle);
            }
            self.ring_empty = false;
        }
        // Only fields other than `handle` are touched below: the packet borrows `handle` for
        // as long as the caller holds it.
        match handle.next_packet() {
            Ok(packet) => {
                self.stats.packets += 1;
                self.packet_number += 1;
                let header = packet.header;
                // time_t and suseconds_t are i64 here, narrower on some 32-bit targets.
                #[allow(clippy::useless_conversion)]
                let (secs, subsec) = (i64::from(header.ts.tv_sec), i64::from(header.ts.tv_usec));
                let data = packet.data.get(..MAX_PACKET_LEN).unwrap_or(packet.data);
                Ok(LivePoll::Packet(RawPacket {
                    ts: timestamp(secs, subsec),
                    link: self.link,
                    data,
                    orig_len: header.len,
                    source: SourcePos { file_index: self.options.source_index, packet_number: self.packet_number },
                }))
            }
            // Nonblocking: nothing is ready now. The next poll waits for the socket first.
            Err(pcap::Error::TimeoutExpired) => {
                self.ring_empty = true;
                self.refresh_wanted = true;
                Ok(LivePoll::Idle)
            }
            Err(e) => {
                let reason = pcap_message(&e);
                let now = Instant::now();
                self.stats.failures += 1;
                push_warning(
                    &mut self.warnings,
                    &mut self.suppressed_warnings,
                    LiveWarning::CaptureFailed {
                        interface: self.options.interface.clone(),
                        reason: reason.clone(),
                        attempt: 1,
                        retry_in: FIRST_RETRY_DELAY,
                    },
                );
                self.failure = Some(Failure {
                    since: now,
                    reason,
                    attempts: 0,
                    delay: FIRST_RETRY_DELAY,
                    retry_at: now + FIRST_RETRY_DELAY,
                });
                Ok(LivePoll::Idle)
            }
        }
    }

    /// Works on a failed handle: waits (at most one read timeout per call) until the retry is
    /// due, then reopens. True when the source is reading again.
    fn retry(&mut self) -> Result<bool, LiveError> {
        let Some(failure) = self.failure.as_mut() else {
            return Ok(true);
        };
        if self.options.privileges == Privileges::DropAll {
            return Err(LiveError::InterfaceLost {
                interface: self.options.interface.clone(),
                reason: failure.reason.clone(),
            });
        }
        let now = Instant::now();
        if now < failure.retry_at {
            std::thread::sleep((failure.retry_at - now).min(self.options.read_timeout));
            return Ok(false);
        }
        failure.attempts += 1;
        let attempts = failure.attempts;
        // The old handle's last counts (packets since the previous refresh), before it goes.
        if attempts == 1 {
            let _ = self.read_kernel_stats();
        }
        // Close first: the old handle's kernel buffer is freed and its fd cannot be confused
        // with the new one's.
        self.handle = None;
        let Some(failure) = self.failure.as_mut() else {
            return Ok(true);
        };
        match privileges::with_net_raw(|| open_handle(&self.options)) {
            Ok((handle, link)) => {
                self.handle = Some(handle);
                self.ring_empty = false;
                self.link = link;
                self.received.handle_reopened();
                self.dropped.handle_reopened();
                self.if_dropped.handle_reopened();
                self.stats.reopens += 1;
                let warning = LiveWarning::Resumed {
                    interface: self.options.interface.clone(),
                    attempts: failure.attempts,
                    outage: failure.since.elapsed(),
                };
                self.failure = None;
                self.push_warning(warning);
                Ok(true)
            }
            Err(e) => {
                failure.delay = (failure.delay * 2).min(MAX_RETRY_DELAY);
                failure.retry_at = Instant::now() + failure.delay;
                let warning = LiveWarning::CaptureFailed {
                    interface: self.options.interface.clone(),
                    reason: e.cause(),
                    attempt: failure.attempts + 1,
                    retry_in: failure.delay,
                };
                self.push_warning(warning);
                Ok(false)
            }
        }
    }

    /// Periodic work: kernel counters, link state, publication.
    fn refresh(&mut self) {
        self.last_refresh = Instant::now();
        // A failing pcap_stats leaves the last figures; the read path reports real trouble.
        let _ = self.read_kernel_stats();
        self.watch_link();
        self.published.publish(&self.stats);
    }

    fn read_kernel_stats(&mut self) -> Result<(), LiveError> {
        let Some(handle) = self.handle.as_mut() else {
            return Ok(());
        };
        let raw = handle
            .stats()
            .map_err(|e| LiveError::Stats { interface: self.options.interface.clone(), reason: pcap_message(&e) })?;
        self.received.update(raw.received);
        self.dropped.update(raw.dropped);
        self.if_dropped.update(raw.if_dropped);
        self.stats.kernel_received = self.received.total();
        self.stats.kernel_dropped = self.dropped.total();
        self.stats.interface_dropped = self.if_dropped.total();
        Ok(())
    }

    /// Warns when the link goes down and comes back, which on Linux does not fail the read.
    fn watch_link(&mut self) {
        let Some(operstate) = link_operstate(&self.options.interface) else {
            return;
        };
        let up = link_is_up(&operstate);
        match (up, self.link_down_since) {
            (false, None) => {
                self.link_down_since = Some(Instant::now());
                let warning = LiveWarning::LinkDown { interface: self.options.interface.clone(), operstate };
                self.push_warning(warning);
            }
            (true, Some(since)) => {
                self.link_down_since = None;
                let warning =
                    LiveWarning::LinkUp { interface: self.options.interface.clone(), down_for: since.elapsed() };
                self.push_warning(warning);
            }
            _ => {}
        }
    }

    fn push_warning(&mut self, warning: LiveWarning) {
        push_warning(&mut self.warnings, &mut self.suppressed_warnings, warning);
    }
}

fn push_warning(warnings: &mut Vec<LiveWarning>, suppressed: &mut u64, warning: LiveWarning) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(warning);
    } else {
        *suppressed += 1;
    }
}

fn check_options(o: &LiveOptions) -> Result<(), LiveError> {
    let bad = |reason: String| Err(LiveError::BadOption { interface: o.interface.clone(), reason });
    if o.interface.is_empty() {
        return bad("empty interface name".into());
    }
    if o.snaplen == 0 || o.snaplen as usize > MAX_PACKET_LEN {
        return bad(format!("snaplen {} is outside 1..={MAX_PACKET_LEN}", o.snaplen));
    }
    if o.read_timeout < Duration::from_millis(1) || o.read_timeout > MAX_READ_TIMEOUT {
        return bad(format!("read timeout {:?} is outside 1 ms..={:?}", o.read_timeout, MAX_READ_TIMEOUT));
    }
    if o.buffer_bytes < o.snaplen || o.buffer_bytes > MAX_BUFFER_BYTES {
        return bad(format!("capture buffer of {} bytes is outside snaplen..={MAX_BUFFER_BYTES}", o.buffer_bytes));
    }
    Ok(())
}

/// Opens, configures and activates a handle, then applies the filter.
fn open_handle(o: &LiveOptions) -> Result<(Capture<Active>, LinkType), LiveError> {
    let name = o.interface.as_str();
    // check_options bounds all three, so none of these conversions can fail.
    let snaplen = i32::try_from(o.snaplen).unwrap_or(i32::MAX);
    let buffer = i32::try_from(o.buffer_bytes).unwrap_or(i32::MAX);
    let timeout_ms = i32::try_from(o.read_timeout.as_millis()).unwrap_or(i32::MAX).max(1);
    let inactive = Capture::from_device(name)
        .map_err(|e| open_error(name, &e))?
        // libpcap refuses promiscuous mode on `any` with a warning the pcap crate treats as failure.
        .promisc(o.promiscuous && name != "any")
        .snaplen(snaplen)
        .buffer_size(buffer)
        .timeout(timeout_ms)
        .immediate_mode(false);
    #[cfg(target_os = "linux")]
    let inactive = inactive.precision(pcap::Precision::Nano);
    let mut handle = inactive.open().map_err(|e| open_error(name, &e))?;
    if let Some(filter) = &o.filter {
        handle.filter(filter, true).map_err(|e| LiveError::BadFilter {
            interface: name.to_string(),
            filter: filter.clone(),
            reason: pcap_message(&e),
        })?;
    }
    // Reads never block in libpcap; poll waits on the socket itself (wait_readable). With the
    // Linux TPACKET_V3 ring a blocking read waits for the kernel to retire a block, which it
    // never does while no packet arrives, so the read timeout alone would not bound the wait.
    let handle =
        handle.setnonblock().map_err(|e| LiveError::Open { interface: name.to_string(), reason: pcap_message(&e) })?;
    let dlt = handle.get_datalink().0;
    let link = link_type(dlt).ok_or(LiveError::UnsupportedLinkType { interface: name.to_string(), link: dlt })?;
    Ok((handle, link))
}

/// Waits until the capture socket has something to read (a packet block, or an error to report)
/// or `timeout` passes.
fn wait_readable(handle: &Capture<Active>, timeout: Duration) -> Result<(), rustix::io::Errno> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(handle, PollFlags::IN)];
    // check_options bounds the timeout to a second, which always converts.
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 });
    rustix::event::poll(&mut fds, Some(&timeout)).map(|_| ())
}

/// Nanoseconds per unit of the `tv_usec` field: on Linux the handle asks for nanosecond
/// precision, which libpcap has granted for live captures there since 1.5, and then fills the
/// field with nanoseconds. Elsewhere it stays microseconds.
const NANOS_PER_SUBSEC_UNIT: u64 = if cfg!(target_os = "linux") { 1 } else { 1_000 };

fn timestamp(secs: i64, subsec: i64) -> Timestamp {
    // A clock before 1970 is a broken clock; such packets get time zero, not a panic.
    let secs = u64::try_from(secs).unwrap_or(0);
    let subsec = u64::try_from(subsec).unwrap_or(0);
    Timestamp::from_secs_nanos(secs, subsec.saturating_mul(NANOS_PER_SUBSEC_UNIT))
}

/// Maps a libpcap DLT value to the LINKTYPE numbering Weir uses. They agree for every link
/// type the decoder reads (DLT_RAW's platform-dependent 12 and 14 included); negative values
/// are not link types at all.
fn link_type(dlt: i32) -> Option<LinkType> {
    let link = LinkType(u32::try_from(dlt).ok()?);
    link.is_supported().then_some(link)
}

/// The text libpcap gave, without the pcap crate's "libpcap error: " decoration.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Sorts an activation failure into the errors a user can act on differently. The pcap crate
/// passes on libpcap's message but not its error code, so the cause is established from the
/// interface list first and the message second.
fn open_error(interface: &str, e: &pcap::Error) -> LiveError {
    let reason = pcap_message(e);
    let listed = pcap::Device::list().ok().map(|devices| devices.into_iter().map(|d| d.name).collect::<Vec<_>>());
    let missing = match &listed {
        Some(names) => !names.iter().any(|n| n == interface),
        None => false,
    } || reason.contains("No such device");
    classify_open_error(interface, reason, missing, listed.unwrap_or_default())
}

fn classify_open_error(interface: &str, reason: String, missing: bool, mut present: Vec<String>) -> LiveError {
    let interface = interface.to_string();
    if missing {
        present.truncate(MAX_LISTED_INTERFACES);
        return LiveError::NoSuchInterface { interface, present };
    }
    let lower = reason.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        return LiveError::PermissionDenied { interface, detail: reason };
    }
    LiveError::Open { interface, reason }
}

/// The kernel's operational state of the interface (`up`, `down`, `lowerlayerdown`, ...), where
/// the platform tells it.
fn link_operstate(interface: &str) -> Option<String> {
    if !cfg!(target_os = "linux") || interface.contains('/') || interface == "." || interface == ".." {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/operstate")).ok()?;
    Some(text.trim().to_string())
}

/// `unknown` is what links without carrier detection (loopback, tun, some virtual devices)
/// report while working.
fn link_is_up(operstate: &str) -> bool {
    matches!(operstate, "up" | "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlt_values_map_to_supported_link_types_only() {
        assert_eq!(link_type(1), Some(LinkType::ETHERNET));
        assert_eq!(link_type(113), Some(LinkType::LINUX_SLL));
        assert_eq!(link_type(276), Some(LinkType::LINUX_SLL2));
        assert_eq!(link_type(12), Some(LinkType::RAW_DLT12));
        assert_eq!(link_type(0), Some(LinkType::NULL));
        // 802.11 radiotap: a real link type the decoder does not read.
        assert_eq!(link_type(127), None);
        assert_eq!(link_type(-1), None);
    }

    #[test]
    fn timestamps_keep_nanoseconds_and_survive_broken_clocks() {
        let ts = timestamp(1_706_702_400, 123_456_789);
        if cfg!(target_os = "linux") {
            assert_eq!(ts.as_nanos(), 1_706_702_400_123_456_789);
        }
        assert_eq!(timestamp(-5, -1), Timestamp::ZERO);
    }

    #[test]
    fn open_failures_are_sorted_by_cause() {
        let e = classify_open_error("eth9", "No such device exists".into(), true, vec!["lo".into()]);
        assert!(matches!(&e, LiveError::NoSuchInterface { present, .. } if present == &["lo"]));

        let e = classify_open_error("eth0", "socket: Operation not permitted".into(), false, vec![]);
        assert_eq!(
            e.to_string(),
            "eth0: permission denied opening it for capture (socket: Operation not permitted); capturing needs CAP_NET_RAW: run as root or grant it with `setcap cap_net_raw=ep` on the binary"
        );
        let e = classify_open_error("eth0", "You don't have permission to perform this capture".into(), false, vec![]);
        assert!(matches!(e, LiveError::PermissionDenied { .. }));

        let e = classify_open_error("eth0", "can't mmap rx ring: Cannot allocate memory".into(), false, vec![]);
        assert_eq!(e.to_string(), "eth0: cannot open for capture: can't mmap rx ring: Cannot allocate memory");

        let many: Vec<String> = (0..40).map(|i| format!("veth{i}")).collect();
        let LiveError::NoSuchInterface { present, .. } = classify_open_error("x", String::new(), true, many) else {
            panic!("expected NoSuchInterface");
        };
        assert_eq!(present.len(), MAX_LISTED_INTERFACES);
    }

    #[test]
    fn options_out_of_range_are_refused_before_opening() {
        let reason = |o: LiveOptions| match check_options(&o) {
            Err(LiveError::BadOption { reason, .. }) => reason,
            other => panic!("expected BadOption, got {other:?}"),
        };
        let mut o = LiveOptions::new("eth0");
        o.snaplen = 0;
        assert_eq!(reason(o), "snaplen 0 is outside 1..=262144");
        let mut o = LiveOptions::new("eth0");
        o.read_timeout = Duration::from_secs(5);
        assert_eq!(reason(o), "read timeout 5s is outside 1 ms..=1s");
        let mut o = LiveOptions::new("eth0");
        o.buffer_bytes = 1000;
        assert_eq!(reason(o), "capture buffer of 1000 bytes is outside snaplen..=1073741824");
        assert_eq!(reason(LiveOptions::new("")), "empty interface name");
        assert!(check_options(&LiveOptions::new("eth0")).is_ok());
    }

    #[test]
    fn only_working_operstates_count_as_up() {
        assert!(link_is_up("up"));
        assert!(link_is_up("unknown"));
        assert!(!link_is_up("down"));
        assert!(!link_is_up("lowerlayerdown"));
        assert!(!link_is_up("dormant"));
        assert_eq!(link_operstate("../../etc"), None);
    }

    #[test]
    fn warnings_past_the_limit_are_counted_not_kept() {
        let mut list = Vec::new();
        let mut suppressed = 0;
        let w = LiveWarning::LinkDown { interface: "eth0".into(), operstate: "down".into() };
        for _ in 0..MAX_WARNINGS + 3 {
            push_warning(&mut list, &mut suppressed, w.clone());
        }
        assert_eq!((list.len(), suppressed), (MAX_WARNINGS, 3));
    }

    #[test]
    fn a_missing_interface_is_named_with_the_ones_present() {
        // Needs no privileges: the interface list is read before anything is opened.
        match LiveSource::open(LiveOptions::new("weir-no-such0")) {
            Err(LiveError::NoSuchInterface { interface, present }) => {
                assert_eq!(interface, "weir-no-such0");
                assert!(present.iter().any(|n| n == "lo"), "present: {present:?}");
            }
            Err(other) => panic!("expected NoSuchInterface, got {other}"),
            Ok(_) => panic!("opened an interface that does not exist"),
        }
    }
}
