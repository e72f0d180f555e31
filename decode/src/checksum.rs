//! The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP and ICMPv6 add to it.

use std::net::IpAddr;

/// One's-complement sum of 16-bit big-endian words, not yet folded or inverted, so partial sums
/// over several slices can be added together.
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold above leaves at most 16 bits.
    sum as u16
}

/// The checksum to write into a header whose checksum field is zero.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !fold(sum_words(bytes))
}

/// Whether bytes that include their own checksum field verify (sum to all ones).
pub fn verifies(bytes: &[u8]) -> bool {
    fold(sum_words(bytes)) == 0xffff
}

fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, upper_len: usize) -> u64 {
    let addresses = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum_words(&s.octets()) + sum_words(&d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum_words(&s.octets()) + sum_words(&d.octets()),
        // Mixed families never come out of one IP header; such a sum simply fails to verify.
        _ => 0,
    };
    let len = upper_len as u64;
    addresses + u64::from(proto) + (len & 0xffff) + (len >> 16)
}

/// Whether a TCP, UDP or ICMPv6 message (header with its checksum, and data) verifies against
/// the pseudo-header of the IP packet that carried it.
pub fn transport_verifies(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> bool {
    fold(pseudo_header_sum(src, dst, proto, segment.len()) + sum_words(segment)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (before inversion).
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&bytes), !0xddf2);
    }

    #[test]
    fn ipv4_header_with_its_checksum_verifies() {
        // bug-6887's rebuilt header: checksum 0x74c6.
        let header = [
            0x45, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x74, 0xc6, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        assert!(verifies(&header));
        let mut zeroed = header;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(internet_checksum(&zeroed), 0x74c6);
    }
}
