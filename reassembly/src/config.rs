//! The `[stream]` configuration: session tracking switches, overlap policy and the limits that
//! keep an attacker from growing reassembly memory.

use serde::Deserialize;

use crate::hostpolicy::HostOsPolicy;
use crate::policy::OverlapPolicy;

/// Suricata's `stream.reassembly.depth` default: 1 MiB per direction.
pub const DEFAULT_REASSEMBLY_DEPTH: u64 = 1024 * 1024;

/// Bytes one session may hold undelivered (both directions, data plus per-segment bookkeeping).
/// Twice the default depth, so a flow whose two directions are both held until the peer's ACK
/// still fits, while a million such flows cannot exhaust a sensor without the global cap acting.
pub const DEFAULT_FLOW_MEMCAP: usize = 2 * 1024 * 1024;

/// Segments one direction may hold undelivered. A 1460-byte MSS stream needs about 720 of them to
/// cover the default depth; 4096 leaves room for small-segment protocols while bounding the
/// bookkeeping of a flood of one-byte segments.
pub const DEFAULT_MAX_QUEUED_SEGMENTS: usize = 4096;

/// Disjoint byte ranges (islands of out-of-order data) one direction may hold. Legitimate loss
/// produces a handful; an evasion flood of tiny segments separated by holes produces thousands.
/// Suricata's flow records report the same figure as `ts_max_regions` / `tc_max_regions`.
pub const DEFAULT_MAX_REGIONS: usize = 64;

/// How far past the receiver's advertised window a segment may start before it is called out of
/// window. Real stacks probe slightly past the window (zero-window probes, in-flight window
/// updates we did not capture), so a little slack avoids false anomalies.
pub const WINDOW_SLACK: u32 = 64 * 1024;

/// Window assumed for a side whose window is unknown (midstream pickup, one-sided flows): the
/// largest distance RFC 7323 allows (2^30), which still rejects sequence numbers from the other
/// half of the sequence space.
pub const UNKNOWN_WINDOW: u32 = 1 << 30;

/// TCP stream settings, the `[stream]` section. Every key is optional.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Pick up sessions whose handshake was not seen. Default **true**, unlike Suricata's false:
    /// a sensor restarted on a busy SPAN port, or started after long-lived sessions were opened
    /// (SMB, database, mail relays, tunnels), would otherwise be blind to every one of them until
    /// they reconnect, and attackers can simply keep a session open across a sensor restart.
    /// The cost is that a session picked up midstream cannot validate its first ACKs, which is
    /// why picked-up sessions are flagged (`TcpSession::is_midstream`).
    pub midstream: bool,
    /// Track sessions where only one direction is captured (asymmetric routing), Suricata's
    /// `stream.async-oneside`. Default false as Suricata: when off, one-sided data is still
    /// delivered, but only when the flow ends (there is no peer ACK to release it earlier).
    pub async_oneside: bool,
    /// How overlapping segments with different data are resolved. Default `bsd`, as Suricata's
    /// default host OS policy.
    pub overlap_policy: OverlapPolicy,
    /// Bytes per direction delivered to parsers; 0 means unlimited. Default 1 MiB as Suricata.
    /// Bytes past it are not stored; the direction ends with a `Gap` covering them.
    pub depth: u64,
    /// Undelivered bytes one session may hold (see [`DEFAULT_FLOW_MEMCAP`]). A segment that would
    /// exceed it is dropped and counted (`stream.reassembly_insert_memcap`), as Suricata's
    /// `ignore` exception policy: the flow goes on and the hole later becomes a `Gap`.
    pub flow_memcap: usize,
    /// Undelivered segments per direction (see [`DEFAULT_MAX_QUEUED_SEGMENTS`]). Over it, a new
    /// segment is dropped and counted (`stream.reassembly_insert_limit`).
    pub max_queued_segments: usize,
    /// Disjoint out-of-order regions per direction (see [`DEFAULT_MAX_REGIONS`]). A segment that
    /// would open a new region past it is dropped and counted (`stream.reassembly_insert_limit`).
    pub max_regions: usize,
    /// Compare overlapping data and raise `stream.reassembly_overlap_different_data` when it
    /// differs (Suricata's `stream.reassembly.check-overlap-different-data`). Default true: the
    /// comparison only touches bytes that overlap, which honest traffic rarely has.
    pub check_overlap_different_data: bool,
    /// Suricata's `stream.inline` (IPS mode). Default false. When on, each direction's in-order
    /// bytes are released as they arrive instead of when the peer ACKs them, so detection sees
    /// them on the packet that carried them (a SYN's Fast Open payload included). Overlaps are
    /// then settled as Suricata's inline mode does: the first copy of a byte seen is kept,
    /// whatever `overlap_policy` says, because an inline sensor rewrites later copies on the
    /// wire to match it. Holes are still given up on only when the peer ACKs past them.
    pub inline: bool,
    /// Overlap policy by receiving host (Suricata's `host-os-policy`): a direction's bytes are
    /// resolved by the policy of the host they are sent to, the longest matching prefix
    /// winning; hosts in no listed network use `overlap_policy`. Needs the caller to tell each
    /// session its addresses ([`crate::TcpSession::set_endpoints`]).
    pub host_os_policy: HostOsPolicy,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            midstream: true,
            async_oneside: false,
            overlap_policy: OverlapPolicy::Bsd,
            depth: DEFAULT_REASSEMBLY_DEPTH,
            flow_memcap: DEFAULT_FLOW_MEMCAP,
            max_queued_segments: DEFAULT_MAX_QUEUED_SEGMENTS,
            max_regions: DEFAULT_MAX_REGIONS,
            check_overlap_different_data: true,
            inline: false,
            host_os_policy: HostOsPolicy::default(),
        }
    }
}

/// One invalid `[stream]` setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("stream.{key} must be greater than 0")]
    MustBePositive { key: &'static str },
}

impl StreamConfig {
    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.flow_memcap == 0 {
            errors.push(ConfigError::MustBePositive { key: "flow_memcap" });
        }
        if self.max_queued_segments == 0 {
            errors.push(ConfigError::MustBePositive { key: "max_queued_segments" });
        }
        if self.max_regions == 0 {
            errors.push(ConfigError::MustBePositive { key: "max_regions" });
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The depth as a stream offset bound (`u64::MAX` when unlimited).
    pub(crate) fn depth_limit(&self) -> u64 {
        if self.depth == 0 { u64::MAX } else { self.depth }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_reports_every_error() {
        let cfg = StreamConfig { flow_memcap: 0, max_regions: 0, ..StreamConfig::default() };
        assert_eq!(
            cfg.validate(),
            Err(vec![
                ConfigError::MustBePositive { key: "flow_memcap" },
                ConfigError::MustBePositive { key: "max_regions" },
            ])
        );
        assert_eq!(StreamConfig::default().validate(), Ok(()));
    }

    #[test]
    fn toml_uses_suricata_policy_names_and_rejects_unknown_keys() {
        let cfg: StreamConfig = toml::from_str("overlap_policy = \"old-linux\"\nasync_oneside = true\ndepth = 4096")
            .expect("valid section");
        assert_eq!(cfg.overlap_policy, OverlapPolicy::OldLinux);
        assert!(cfg.async_oneside && cfg.midstream);
        assert_eq!(cfg.depth, 4096);
        let err = toml::from_str::<StreamConfig>("async-oneside = true").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `async-oneside`"), "{err}");
        assert!(toml::from_str::<StreamConfig>("overlap_policy = \"plan9\"").is_err());
    }

    #[test]
    fn depth_zero_means_unlimited() {
        let cfg = StreamConfig { depth: 0, ..StreamConfig::default() };
        assert_eq!(cfg.depth_limit(), u64::MAX);
        assert_eq!(StreamConfig::default().depth_limit(), 1_048_576);
    }
}
