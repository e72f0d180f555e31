//! Counters of a live source: its own, and the kernel's as `pcap_stats` reports them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one live source since it was opened, across reopenings of the interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets handed to the caller.
    pub packets: u64,
    /// Packets the kernel accepted for this handle (after the BPF filter), including dropped
    /// ones: libpcap's `ps_recv`.
    pub kernel_received: u64,
    /// Packets the kernel dropped because the capture buffer was full, i.e. the reader was too
    /// slow: libpcap's `ps_drop`. The figure to watch.
    pub kernel_dropped: u64,
    /// Packets the interface or its driver dropped (on Linux, the interface's rx_dropped since
    /// the handle opened): libpcap's `ps_ifdrop`.
    pub interface_dropped: u64,
    /// Times reading failed and the source went into retry.
    pub failures: u64,
    /// Times the interface was successfully reopened after a failure.
    pub reopens: u64,
}

/// Turns libpcap's 32-bit counters, which wrap and restart at zero on every new handle, into
/// 64-bit totals for the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KernelCounter {
    total: u64,
    last_raw: u32,
}

impl KernelCounter {
    /// Takes the handle's current reading; a reading below the last one means the counter
    /// wrapped (libpcap's counters only grow within one handle).
    pub(crate) fn update(&mut self, raw: u32) {
        self.total = self.total.wrapping_add(u64::from(raw.wrapping_sub(self.last_raw)));
        self.last_raw = raw;
    }

    /// A new handle starts counting from zero.
    pub(crate) fn handle_reopened(&mut self) {
        self.last_raw = 0;
    }

    pub(crate) fn total(self) -> u64 {
        self.total
    }
}

/// A read-only view of a [`LiveSource`](super::LiveSource)'s counters for other threads (a
/// stats reporter, the health record for the Central Node). The source publishes into it every
/// [`STATS_REFRESH_INTERVAL`](super::STATS_REFRESH_INTERVAL) while it is polled, so a snapshot
/// is at most that old (plus one read timeout when no packets arrive).
#[derive(Clone, Debug, Default)]
pub struct LiveStatsHandle {
    shared: Arc<SharedStats>,
}

#[derive(Debug, Default)]
struct SharedStats {
    packets: AtomicU64,
    kernel_received: AtomicU64,
    kernel_dropped: AtomicU64,
    interface_dropped: AtomicU64,
    failures: AtomicU64,
    reopens: AtomicU64,
}

impl LiveStatsHandle {
    /// The counters as last published. Each field is exact for its moment; fields may be from
    /// adjacent publications.
    pub fn snapshot(&self) -> LiveStats {
        let s = &self.shared;
        LiveStats {
            packets: s.packets.load(Ordering::Relaxed),
            kernel_received: s.kernel_received.load(Ordering::Relaxed),
            kernel_dropped: s.kernel_dropped.load(Ordering::Relaxed),
            interface_dropped: s.interface_dropped.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            reopens: s.reopens.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn publish(&self, stats: &LiveStats) {
        let s = &self.shared;
        s.packets.store(stats.packets, Ordering::Relaxed);
        s.kernel_received.store(stats.kernel_received, Ordering::Relaxed);
        s.kernel_dropped.store(stats.kernel_dropped, Ordering::Relaxed);
        s.interface_dropped.store(stats.interface_dropped, Ordering::Relaxed);
        s.failures.store(stats.failures, Ordering::Relaxed);
        s.reopens.store(stats.reopens, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_accumulates_across_wraps_and_reopens() {
        let mut c = KernelCounter::default();
        c.update(10);
        c.update(25);
        assert_eq!(c.total(), 25);
        // The 32-bit counter wraps: 0xFFFF_FFF0 then 5 is 21 more packets.
        c.update(0xFFFF_FFF0);
        assert_eq!(c.total(), 0xFFFF_FFF0);
        c.update(5);
        assert_eq!(c.total(), 0xFFFF_FFF0 + 21);
        // A reopened handle counts from zero again; nothing is lost or counted twice.
        c.handle_reopened();
        c.update(7);
        assert_eq!(c.total(), 0xFFFF_FFF0 + 28);
        c.update(7);
        assert_eq!(c.total(), 0xFFFF_FFF0 + 28);
    }

    #[test]
    fn snapshot_returns_what_was_published() {
        let handle = LiveStatsHandle::default();
        let other_thread_view = handle.clone();
        let stats = LiveStats {
            packets: 1,
            kernel_received: 2,
            kernel_dropped: 3,
            interface_dropped: 4,
            failures: 5,
            reopens: 6,
        };
        handle.publish(&stats);
        assert_eq!(other_thread_view.snapshot(), stats);
    }
}
