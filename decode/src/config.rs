//! Decoder configuration: a serde tree with documented defaults; unknown keys are rejected.

use serde::{Deserialize, Serialize};

/// How the decoder treats tunnels, checksums and fragments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// UDP destination ports decoded as VXLAN (default `[4789]`, the IANA port). Empty disables.
    pub vxlan_ports: Vec<u16>,
    /// Verify IPv4, TCP, UDP and ICMP checksums (default off: replayed captures are often taken
    /// on hosts that offload checksums, as Suricata's `checksum-validation: auto` assumes).
    pub checksum_validation: bool,
    /// Tunnels inside tunnels deeper than this are not opened (default 8).
    pub max_tunnel_depth: u8,
    pub defrag: DefragConfig,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            vxlan_ports: vec![4789],
            checksum_validation: false,
            max_tunnel_depth: 8,
            defrag: DefragConfig::default(),
        }
    }
}

/// IP defragmentation settings (Suricata's `defrag` section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragConfig {
    /// Rebuild fragmented datagrams (default on). Off: fragments are handed over as they come.
    pub enabled: bool,
    /// Bytes all datagrams under reassembly may hold together (default 32 MiB, as Suricata). When
    /// full, the oldest datagrams are dropped first.
    pub memcap: usize,
    /// Seconds of packet time after its first fragment a datagram is given (default 60).
    pub timeout_secs: u64,
    /// Fragments one datagram may have (default 1024); more drop the datagram.
    pub max_fragments: usize,
    /// Which bytes win when fragments overlap (default `bsd`, as Suricata).
    pub policy: OverlapPolicy,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            enabled: true,
            memcap: 32 * 1024 * 1024,
            timeout_secs: 60,
            max_fragments: 1024,
            policy: OverlapPolicy::Bsd,
        }
    }
}

/// Target-based overlap resolution, spelled as in Suricata's `host-os-policy` (Novak, "Target-Based
/// Fragmentation Reassembly", 2005). Each rule decides, for the bytes a newly arrived fragment
/// shares with data already held, whether the new bytes replace the old.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// Data already held always wins.
    First,
    /// The newest data always wins.
    Last,
    /// New data wins only where the new fragment starts before the held one.
    #[default]
    Bsd,
    /// New data wins where the new fragment ends after the held one (BSD mirrored).
    BsdRight,
    /// As BSD, and a new fragment at the same offset also wins.
    Linux,
    /// New data wins only where the new fragment starts before and ends after the held one.
    Windows,
    /// New data wins where the new fragment starts before and ends at or after the held one.
    Solaris,
}

impl OverlapPolicy {
    /// Whether a new fragment covering `new` (start, end) replaces bytes of a held fragment
    /// covering `held`.
    pub(crate) fn new_wins(self, new: (u32, u32), held: (u32, u32)) -> bool {
        match self {
            OverlapPolicy::First => false,
            OverlapPolicy::Last => true,
            OverlapPolicy::Bsd => new.0 < held.0,
            OverlapPolicy::BsdRight => new.1 > held.1,
            OverlapPolicy::Linux => new.0 <= held.0,
            OverlapPolicy::Windows => new.0 < held.0 && new.1 > held.1,
            OverlapPolicy::Solaris => new.0 < held.0 && new.1 >= held.1,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("defrag.memcap must be at least {min} bytes (one maximal datagram), got {got}")]
    MemcapTooSmall { min: usize, got: usize },
    #[error("defrag.timeout_secs must be greater than 0")]
    ZeroTimeout,
    #[error("defrag.max_fragments must be greater than 0")]
    ZeroMaxFragments,
    #[error("vxlan_ports must not contain port 0")]
    VxlanPortZero,
}

impl DecodeConfig {
    /// Checks every value and reports every problem at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let min = crate::defrag::MAX_DATAGRAM_MEMORY;
        if self.defrag.memcap < min {
            errors.push(ConfigError::MemcapTooSmall {
                min,
                got: self.defrag.memcap,
            });
        }
        if self.defrag.timeout_secs == 0 {
            errors.push(ConfigError::ZeroTimeout);
        }
        if self.defrag.max_fragments == 0 {
            errors.push(ConfigError::ZeroMaxFragments);
        }
        if self.vxlan_ports.contains(&0) {
            errors.push(ConfigError::VxlanPortZero);
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_suricata() {
        let c = DecodeConfig::default();
        assert_eq!(c.vxlan_ports, vec![4789]);
        assert!(!c.checksum_validation);
        assert_eq!(c.defrag.timeout_secs, 60);
        assert_eq!(c.defrag.policy, OverlapPolicy::Bsd);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn toml_uses_suricata_policy_names_and_rejects_unknown_keys() {
        let c: DecodeConfig = toml::from_str("vxlan_ports = [4789, 8472]\n[defrag]\npolicy = \"bsd-right\"\n").unwrap();
        assert_eq!(c.vxlan_ports, vec![4789, 8472]);
        assert_eq!(c.defrag.policy, OverlapPolicy::BsdRight);
        assert_eq!(c.defrag.timeout_secs, 60);
        assert!(toml::from_str::<DecodeConfig>("vxlan_port = [1]").is_err());
        assert!(toml::from_str::<DecodeConfig>("[defrag]\npolicy = \"hpux\"").is_err());
    }

    #[test]
    fn validate_reports_every_error() {
        let mut c = DecodeConfig::default();
        c.defrag.memcap = 10;
        c.defrag.timeout_secs = 0;
        c.vxlan_ports = vec![0];
        let errors = c.validate().unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(matches!(errors[0], ConfigError::MemcapTooSmall { got: 10, .. }));
    }
}
