//! Per-host overlap policies (Suricata's `host-os-policy`): the stack of the host a direction's
//! bytes are sent to decides how that host would have resolved overlaps, so that is the copy
//! the sensor must keep to see what the victim saw.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

use crate::policy::OverlapPolicy;

/// Networks one host OS policy table may list. The table is configuration, not traffic, but it
/// is scanned once per new TCP session, so its size is bounded to keep that scan cheap.
pub const MAX_HOST_OS_POLICY_NETS: usize = 4096;

/// An address prefix, `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a single host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a host OS policy table was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostPolicyError {
    #[error("`{0}` is not an address or address/prefix")]
    BadNetwork(String),
    #[error("host_os_policy lists more than {MAX_HOST_OS_POLICY_NETS} networks")]
    TooManyNetworks,
}

impl FromStr for IpNet {
    type Err = HostPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HostPolicyError::BadNetwork(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // Addresses as 128-bit numbers, left-aligned, so one mask works for both families.
        fn bits(ip: IpAddr) -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        }
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        bits(self.addr) & mask == bits(ip) & mask
    }
}

/// Policy by receiving host; the longest matching prefix wins (equal prefixes: listed first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<OverlapPolicy, Vec<String>>")]
pub struct HostOsPolicy {
    nets: Vec<(IpNet, OverlapPolicy)>,
}

impl HostOsPolicy {
    /// Builds the table from (policy, networks) pairs, as the config file lists them.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (OverlapPolicy, &'a [String])>,
    ) -> Result<Self, HostPolicyError> {
        let mut nets = Vec::new();
        for (policy, list) in entries {
            for net in list {
                if nets.len() == MAX_HOST_OS_POLICY_NETS {
                    return Err(HostPolicyError::TooManyNetworks);
                }
                nets.push((net.parse::<IpNet>()?, policy));
            }
        }
        // Longest prefix first, so the first match is the most specific one.
        nets.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix));
        Ok(HostOsPolicy { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The policy of the host at `ip`, if a listed network holds it.
    pub fn lookup(&self, ip: IpAddr) -> Option<OverlapPolicy> {
        self.nets.iter().find(|(net, _)| net.contains(ip)).map(|(_, policy)| *policy)
    }
}

impl TryFrom<BTreeMap<OverlapPolicy, Vec<String>>> for HostOsPolicy {
    type Error = HostPolicyError;

    fn try_from(map: BTreeMap<OverlapPolicy, Vec<String>>) -> Result<Self, Self::Error> {
        HostOsPolicy::new(map.iter().map(|(policy, list)| (*policy, list.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn networks_parse_and_match_by_prefix() {
        let net: IpNet = "10.1.0.0/16".parse().expect("valid");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::ffff:10.1.0.1")), "families never mix");
        let host: IpNet = "192.168.1.7".parse().expect("valid");
        assert!(host.contains(ip("192.168.1.7")) && !host.contains(ip("192.168.1.8")));
        let v6: IpNet = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let any: IpNet = "0.0.0.0/0".parse().expect("valid");
        assert!(any.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "fe80::/129", "10.0.0.0/x", ""] {
            assert_eq!(bad.parse::<IpNet>(), Err(HostPolicyError::BadNetwork(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn longest_prefix_wins_and_unlisted_hosts_have_none() {
        let wide = vec!["10.0.0.0/8".to_string()];
        let narrow = vec!["10.9.0.0/16".to_string(), "2001:db8::1".to_string()];
        let table = HostOsPolicy::new([
            (OverlapPolicy::Windows, wide.as_slice()),
            (OverlapPolicy::OldLinux, narrow.as_slice()),
        ])
        .expect("valid table");
        assert_eq!(table.lookup(ip("10.9.1.1")), Some(OverlapPolicy::OldLinux));
        assert_eq!(table.lookup(ip("10.8.1.1")), Some(OverlapPolicy::Windows));
        assert_eq!(table.lookup(ip("2001:db8::1")), Some(OverlapPolicy::OldLinux));
        assert_eq!(table.lookup(ip("192.0.2.1")), None);
    }

    #[test]
    fn toml_map_of_policy_names_to_networks() {
        let table: HostOsPolicy =
            toml::from_str("old-linux = [\"10.0.0.0/8\"]\nsolaris = [\"192.0.2.0/24\"]").expect("valid table");
        assert_eq!(table.lookup(ip("10.0.0.1")), Some(OverlapPolicy::OldLinux));
        assert_eq!(table.lookup(ip("192.0.2.200")), Some(OverlapPolicy::Solaris));
        let err = toml::from_str::<HostOsPolicy>("bsd = [\"10.0.0.300\"]").expect_err("bad address");
        assert!(err.to_string().contains("`10.0.0.300` is not an address"), "{err}");
    }

    #[test]
    fn table_size_is_bounded() {
        let many: Vec<String> = (0..=MAX_HOST_OS_POLICY_NETS).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
        assert_eq!(HostOsPolicy::new([(OverlapPolicy::Bsd, many.as_slice())]), Err(HostPolicyError::TooManyNetworks));
    }
}
