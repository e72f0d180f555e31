//! Overlap policies: which copy of a byte wins when two segments cover it with different data.
//!
//! The decision is taken per pair (new segment, each held segment it overlaps) and depends only
//! on where the two start and end, as in Suricata's IDS mode. The names are Suricata's
//! `host-os-policy` names, so a configuration written for Suricata reads the same here.

use serde::Deserialize;

/// A target-based reassembly policy, named after the stacks whose behaviour it models.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// The first copy seen always wins.
    First,
    /// The latest copy always wins.
    Last,
    /// Suricata's default: the new copy wins only where it starts before the held one.
    #[default]
    Bsd,
    /// Original data always kept (HP JetDirect).
    BsdRight,
    /// As BSD, and the new copy also wins when it starts together with the held one and is
    /// longer.
    Linux,
    /// As BSD, and the new copy also wins when it starts together with the held one and is not
    /// shorter.
    OldLinux,
    /// Original data always kept.
    OldSolaris,
    /// The new copy wins when it ends at or past the held one's end while starting at or before
    /// it, or when it starts after and ends past it.
    Solaris,
    Hpux10,
    Hpux11,
    Irix,
    Macos,
    Windows,
    Windows2k3,
    /// Original data always kept.
    Vista,
}

impl OverlapPolicy {
    /// Every policy.
    pub const ALL: [OverlapPolicy; 15] = [
        OverlapPolicy::First,
        OverlapPolicy::Last,
        OverlapPolicy::Bsd,
        OverlapPolicy::BsdRight,
        OverlapPolicy::Linux,
        OverlapPolicy::OldLinux,
        OverlapPolicy::OldSolaris,
        OverlapPolicy::Solaris,
        OverlapPolicy::Hpux10,
        OverlapPolicy::Hpux11,
        OverlapPolicy::Irix,
        OverlapPolicy::Macos,
        OverlapPolicy::Windows,
        OverlapPolicy::Windows2k3,
        OverlapPolicy::Vista,
    ];
}

/// A segment's extent as stream offsets: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Extent {
    pub start: u64,
    pub end: u64,
}

impl OverlapPolicy {
    /// Whether the bytes of `new` replace the bytes of `held` where they overlap (when they
    /// differ). Callers only ask for overlapping pairs.
    pub(crate) fn new_data_wins(self, new: Extent, held: Extent) -> bool {
        use OverlapPolicy::*;
        let solaris_like = matches!(self, Solaris | Hpux11);
        if self == Last {
            return true;
        }
        if new.start == held.start {
            if new.end < held.end {
                return false;
            }
            (new.end > held.end && self == Linux) || matches!(self, OldLinux | Solaris | Hpux11)
        } else if new.start < held.start {
            (new.end >= held.end && solaris_like)
                || matches!(self, Bsd | Hpux10 | Irix | Windows | Windows2k3 | OldLinux | Linux | Macos)
        } else {
            new.end > held.end && solaris_like
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OverlapPolicy::*;

    fn ext(start: u64, end: u64) -> Extent {
        Extent { start, end }
    }

    #[test]
    fn exact_overlap_keeps_old_data_except_old_linux_solaris_hpux11_last() {
        let held = ext(10, 20);
        let winners: Vec<OverlapPolicy> = [
            First, Last, Bsd, BsdRight, Linux, OldLinux, OldSolaris, Solaris, Hpux10, Hpux11, Irix, Macos,
            Windows, Windows2k3, Vista,
        ]
        .into_iter()
        .filter(|p| p.new_data_wins(ext(10, 20), held))
        .collect();
        assert_eq!(winners, vec![Last, OldLinux, Solaris, Hpux11]);
    }

    #[test]
    fn starting_before_wins_for_bsd_family() {
        let held = ext(10, 20);
        // new [5, 15): starts before, ends inside
        assert!(Bsd.new_data_wins(ext(5, 15), held));
        assert!(Windows.new_data_wins(ext(5, 15), held));
        assert!(!Solaris.new_data_wins(ext(5, 15), held));
        assert!(!First.new_data_wins(ext(5, 15), held));
        assert!(!Vista.new_data_wins(ext(5, 15), held));
        // new [5, 20): starts before, ends together: Solaris takes it too
        assert!(Solaris.new_data_wins(ext(5, 20), held));
    }

    #[test]
    fn same_start_longer_wins_only_for_linux_family() {
        let held = ext(10, 20);
        assert!(Linux.new_data_wins(ext(10, 25), held));
        assert!(OldLinux.new_data_wins(ext(10, 25), held));
        assert!(!Bsd.new_data_wins(ext(10, 25), held));
        // shorter never wins except with Last
        assert!(!Linux.new_data_wins(ext(10, 15), held));
        assert!(Last.new_data_wins(ext(10, 15), held));
    }

    #[test]
    fn starting_after_wins_only_for_solaris_when_it_ends_past() {
        let held = ext(10, 20);
        assert!(Solaris.new_data_wins(ext(15, 25), held));
        assert!(!Solaris.new_data_wins(ext(15, 20), held));
        assert!(!Bsd.new_data_wins(ext(15, 25), held));
        assert!(!Linux.new_data_wins(ext(12, 18), held));
    }
}
