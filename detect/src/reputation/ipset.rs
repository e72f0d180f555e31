//! IP addresses and CIDR blocks, v4 and v6, with every matching block found.
//!
//! One hash map per prefix length in use: a lookup masks the address once per length and probes
//! that map, so it costs as many probes as there are distinct lengths (a handful in real feeds,
//! at most 33 + 129), whatever the number of entries. Overlapping blocks are simply kept in their
//! own maps, so an address inside both `10.0.0.0/8` and `10.1.0.0/16` finds both.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::normalize::NormalizeError;

/// An address block: the address with its host bits cleared, and the prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// A block; host bits past `len` are cleared (`10.1.2.3/8` is `10.0.0.0/8`). `None` when
    /// `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Option<IpNet> {
        match addr {
            IpAddr::V4(a) if len <= 32 => Some(IpNet {
                addr: IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(a), len))),
                len,
            }),
            IpAddr::V6(a) if len <= 128 => Some(IpNet {
                addr: IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(a), len))),
                len,
            }),
            _ => None,
        }
    }

    /// The block holding exactly one address.
    pub fn host(addr: IpAddr) -> IpNet {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, len }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        IpNet::new(ip, self.len).is_some_and(|n| n.addr == self.addr)
    }
}

impl fmt::Display for IpNet {
    /// A single address is written without `/32` or `/128`, as feeds list them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl FromStr for IpNet {
    type Err = NormalizeError;

    /// `a.b.c.d`, `a.b.c.d/len`, `v6`, `v6/len`, `[v6]`.
    fn from_str(s: &str) -> Result<IpNet, NormalizeError> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (
                a,
                Some(l.parse::<u8>().map_err(|_| NormalizeError::BadAddress)?),
            ),
            None => (s, None),
        };
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let ip: IpAddr = addr.parse().map_err(|_| NormalizeError::BadAddress)?;
        match len {
            None => Ok(IpNet::host(ip)),
            Some(len) => IpNet::new(ip, len).ok_or(NormalizeError::BadAddress),
        }
    }
}

fn mask_v4(a: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        l => a & (u32::MAX << (32 - u32::from(l.min(32)))),
    }
}

fn mask_v6(a: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l => a & (u128::MAX << (128 - u32::from(l.min(128)))),
    }
}

/// Blocks mapped to values; every block containing an address can be found.
#[derive(Clone, Debug)]
pub struct PrefixMap<V> {
    /// Sorted longest prefix first, so the most specific blocks come out first.
    v4: Vec<(u8, HashMap<u32, V>)>,
    v6: Vec<(u8, HashMap<u128, V>)>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

fn slot<K: Hash + Eq, V: Default>(maps: &mut Vec<(u8, HashMap<K, V>)>, len: u8, key: K) -> &mut V {
    let at = match maps.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(at) => at,
        Err(at) => {
            maps.insert(at, (len, HashMap::new()));
            at
        }
    };
    maps[at].1.entry(key).or_default()
}

impl<V: Default> PrefixMap<V> {
    /// The value for a block, created empty when the block is new.
    pub fn entry(&mut self, net: IpNet) -> &mut V {
        match net.addr {
            IpAddr::V4(a) => slot(&mut self.v4, net.len, u32::from(a)),
            IpAddr::V6(a) => slot(&mut self.v6, net.len, u128::from(a)),
        }
    }
}

impl<V> PrefixMap<V> {
    /// Every block containing `ip` with its value, most specific first.
    pub fn matches(&self, ip: IpAddr) -> Vec<(IpNet, &V)> {
        let mut found = Vec::new();
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                for (len, map) in &self.v4 {
                    let key = mask_v4(a, *len);
                    if let Some(v) = map.get(&key) {
                        found.push((
                            IpNet {
                                addr: IpAddr::V4(Ipv4Addr::from(key)),
                                len: *len,
                            },
                            v,
                        ));
                    }
                }
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                for (len, map) in &self.v6 {
                    let key = mask_v6(a, *len);
                    if let Some(v) = map.get(&key) {
                        found.push((
                            IpNet {
                                addr: IpAddr::V6(Ipv6Addr::from(key)),
                                len: *len,
                            },
                            v,
                        ));
                    }
                }
            }
        }
        found
    }

    /// Whether any block contains `ip`; stops at the first.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self
                .v4
                .iter()
                .any(|(len, map)| map.contains_key(&mask_v4(u32::from(a), *len))),
            IpAddr::V6(a) => self
                .v6
                .iter()
                .any(|(len, map)| map.contains_key(&mask_v6(u128::from(a), *len))),
        }
    }

    pub fn len(&self) -> usize {
        self.v4.iter().map(|(_, m)| m.len()).sum::<usize>()
            + self.v6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_masks_blocks() {
        assert_eq!(net("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(net("192.0.2.1/32").to_string(), "192.0.2.1");
        assert_eq!(net("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("[2001:db8::1]").to_string(), "2001:db8::1");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(NormalizeError::BadAddress)
        );
        assert_eq!(
            "2001:db8::/129".parse::<IpNet>(),
            Err(NormalizeError::BadAddress)
        );
        assert_eq!("10.0.0/8".parse::<IpNet>(), Err(NormalizeError::BadAddress));
        assert_eq!(
            "10.0.0.1/x".parse::<IpNet>(),
            Err(NormalizeError::BadAddress)
        );
        assert_eq!(
            "evil.example".parse::<IpNet>(),
            Err(NormalizeError::BadAddress)
        );
    }

    #[test]
    fn overlapping_blocks_all_match_most_specific_first() {
        let mut m: PrefixMap<Vec<&str>> = PrefixMap::default();
        m.entry(net("10.0.0.0/8")).push("wide");
        m.entry(net("10.1.0.0/16")).push("narrow");
        m.entry(net("10.1.2.3")).push("host");
        m.entry(net("10.1.0.0/16")).push("narrow again");
        let found: Vec<(String, Vec<&str>)> = m
            .matches(ip("10.1.2.3"))
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        assert_eq!(
            found,
            [
                ("10.1.2.3".to_string(), vec!["host"]),
                ("10.1.0.0/16".to_string(), vec!["narrow", "narrow again"]),
                ("10.0.0.0/8".to_string(), vec!["wide"]),
            ]
        );
        assert_eq!(m.matches(ip("10.2.0.1")).len(), 1);
        assert!(m.matches(ip("11.0.0.1")).is_empty());
        assert!(!m.contains(ip("11.0.0.1")));
        assert!(m.contains(ip("10.255.255.255")));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn v6_blocks_and_v4_do_not_mix() {
        let mut m: PrefixMap<u32> = PrefixMap::default();
        *m.entry(net("2001:db8::/32")) += 1;
        *m.entry(net("0.0.0.0/0")) += 1;
        assert_eq!(m.matches(ip("2001:db8:ffff::1")).len(), 1);
        assert_eq!(m.matches(ip("2001:db9::1")).len(), 0);
        // ::ffff:10.0.0.1 is a v6 address here: v4-mapped forms are not folded.
        assert_eq!(m.matches(ip("::ffff:10.0.0.1")).len(), 0);
        assert_eq!(m.matches(ip("8.8.8.8")).len(), 1);
        assert!(net("2001:db8::/32").contains(ip("2001:db8::5")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
    }
}
