//! FTP data endpoints as the dispatcher reads them from control connections, so a data
//! connection is steered to the worker holding its control connection. The dispatcher sees
//! segments, not streams: a control line cut between two segments is kept (bounded) until the
//! next in-sequence segment of its direction completes it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use weir_core::{FlowKey, Timestamp};

/// An FTP data endpoint announced on a control connection: who listens, who will connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FtpEndpoint {
    pub listener: IpAddr,
    pub port: u16,
    pub peer: IpAddr,
}

/// Longest unfinished line kept: an announcement is under 100 bytes (`EPRT |2|<IPv6>|<port>|`).
const MAX_PARTIAL_LINE: usize = 256;
/// Directions of TCP flows with an unfinished line kept at once; past it none is added.
const MAX_PARTIAL_LINES: usize = 4096;

/// The words an announcement starts with: `PORT`/`EPRT` commands (any case), `227`/`229` replies.
const ANNOUNCING: [&[u8]; 4] = [b"PORT", b"EPRT", b"227", b"229"];

/// An unfinished line and where its direction's next segment must start to continue it.
struct Partial {
    bytes: Vec<u8>,
    next_seq: u32,
    seen: Timestamp,
}

/// Reads announcements from TCP segments, joining lines cut between segments.
#[derive(Default)]
pub(super) struct AnnouncementReader {
    partial: HashMap<FlowKey, Partial>,
}

impl AnnouncementReader {
    /// The data endpoints the segment (`seq`, `payload`) of `key`'s direction announces. Only
    /// text that starts like an announcement is read, so other traffic costs a short look at
    /// both ends of the segment.
    pub fn segment(&mut self, key: &FlowKey, seq: u32, payload: &[u8], ts: Timestamp) -> Vec<FtpEndpoint> {
        if payload.is_empty() {
            return Vec::new();
        }
        let joined;
        // Almost always empty: no hashing on the way of ordinary segments.
        let pending = if self.partial.is_empty() { None } else { self.partial.remove(key) };
        let text = match pending {
            Some(p) if p.next_seq == seq => {
                joined = [p.bytes.as_slice(), payload].concat();
                joined.as_slice()
            }
            // A retransmission or a later segment: the unfinished line is given up.
            _ => payload,
        };
        let mut found = Vec::new();
        let read = may_begin_announcement(text);
        // Where the unfinished last line starts. For text not read, only a tail short enough to
        // keep is looked for: without a newline in the window, the tail is longer than that.
        let from = if read { 0 } else { text.len().saturating_sub(MAX_PARTIAL_LINE + 1) };
        let tail_start = match text[from..].iter().rposition(|&b| b == b'\n') {
            Some(i) => from + i + 1,
            None => from,
        };
        if read {
            for line in text[..tail_start].split(|&b| b == b'\n') {
                if let Some(endpoints) = endpoints_of(key, line) {
                    found.extend(endpoints);
                }
            }
        }
        let tail = &text[tail_start..];
        if !tail.is_empty()
            && tail.len() <= MAX_PARTIAL_LINE
            && may_begin_announcement(tail)
            && self.partial.len() < MAX_PARTIAL_LINES
        {
            let next_seq = seq.wrapping_add(payload.len() as u32);
            self.partial.insert(*key, Partial { bytes: tail.to_vec(), next_seq, seen: ts });
        }
        found
    }

    /// Forgets unfinished lines not continued within `timeout` of packet time.
    pub fn expire(&mut self, now: Timestamp, timeout: Duration) {
        self.partial.retain(|_, p| now.since(p.seen) < timeout);
    }
}

/// Whether `text` starts as an announcement does, or could once more bytes follow.
fn may_begin_announcement(text: &[u8]) -> bool {
    ANNOUNCING.iter().any(|word| {
        let n = word.len().min(text.len());
        text[..n].eq_ignore_ascii_case(&word[..n])
    })
}

/// The endpoints one complete control line announces, sent by `key`'s source.
fn endpoints_of(key: &FlowKey, line: &[u8]) -> Option<Vec<FtpEndpoint>> {
    let (ip, port) = weir_extract::ftp::announced_endpoint(line)?;
    let mut found = Vec::with_capacity(2);
    if line.first().is_some_and(u8::is_ascii_digit) {
        // A reply: the server (this segment's sender) listens, the client connects.
        found.push(FtpEndpoint { listener: key.src_ip, port, peer: key.dst_ip });
        if let Some(ip) = ip.filter(|ip| *ip != key.src_ip) {
            found.push(FtpEndpoint { listener: ip, port, peer: key.dst_ip });
        }
    } else {
        // A command: the client (this segment's sender) listens, the server connects.
        found.push(FtpEndpoint { listener: ip.unwrap_or(key.src_ip), port, peer: key.dst_ip });
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use weir_core::{IpProto, Vlans};

    use super::*;

    fn server_to_client() -> FlowKey {
        FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)),
            src_port: 21,
            dst_port: 40000,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        }
    }

    fn listening(port: u16) -> FtpEndpoint {
        FtpEndpoint {
            listener: IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2)),
            port,
            peer: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)),
        }
    }

    const T: Timestamp = Timestamp::ZERO;

    #[test]
    fn a_reply_in_one_segment_is_read() {
        let mut r = AnnouncementReader::default();
        let found = r.segment(&server_to_client(), 100, b"227 Entering Passive Mode (10,2,2,2,195,80).\r\n", T);
        assert_eq!(found, [listening(50000)]);
        assert!(r.partial.is_empty());
    }

    #[test]
    fn a_reply_cut_anywhere_is_read_when_its_rest_follows_in_sequence() {
        let line: &[u8] = b"229 Entering Extended Passive Mode (|||50001|)\r\n";
        for cut in 1..line.len() - 1 {
            let mut r = AnnouncementReader::default();
            let key = server_to_client();
            assert_eq!(r.segment(&key, 1000, &line[..cut], T), [], "cut at {cut}");
            assert_eq!(r.segment(&key, 1000 + cut as u32, &line[cut..], T), [listening(50001)], "cut at {cut}");
            assert!(r.partial.is_empty());
        }
    }

    #[test]
    fn an_unfinished_line_is_not_read_early_nor_joined_out_of_sequence() {
        let mut r = AnnouncementReader::default();
        let key = server_to_client();
        // "...,195,8" would announce port 49928 if read before its last digit came.
        assert_eq!(r.segment(&key, 1, b"227 Entering Passive Mode (10,2,2,2,195,8", T), []);
        // A retransmission of the first part: still waiting, from the start again.
        assert_eq!(r.segment(&key, 1, b"227 Entering Passive Mode (10,2,2,2,195,8", T), []);
        // A segment that does not continue it ends the wait.
        assert_eq!(r.segment(&key, 9999, b"0).\r\n", T), []);
        assert!(r.partial.is_empty());
    }

    #[test]
    fn other_traffic_keeps_nothing_or_only_a_short_tail() {
        let mut r = AnnouncementReader::default();
        let key = server_to_client();
        assert_eq!(r.segment(&key, 1, &[0x41; 1400], T), []);
        assert_eq!(r.segment(&key, 1401, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", T), []);
        assert!(r.partial.is_empty());
        // A line that might become an announcement is kept until the next segment.
        r.segment(&key, 2000, b"150 ok\r\n2", T);
        assert_eq!(r.partial.len(), 1);
        r.segment(&key, 2009, b"00 not an announcement\r\n", T);
        assert!(r.partial.is_empty());
        // Long unfinished lines are not kept.
        let mut long = b"PORT ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 300));
        r.segment(&key, 5000, &long, T);
        assert!(r.partial.is_empty());
    }

    #[test]
    fn kept_lines_are_bounded_and_expire() {
        let mut r = AnnouncementReader::default();
        for port in 0..(MAX_PARTIAL_LINES as u16 + 10) {
            let key = FlowKey { dst_port: port, ..server_to_client() };
            r.segment(&key, 1, b"227 Entering", Timestamp::from_secs_nanos(10, 0));
        }
        assert_eq!(r.partial.len(), MAX_PARTIAL_LINES);
        r.expire(Timestamp::from_secs_nanos(200, 0), Duration::from_secs(120));
        assert!(r.partial.is_empty());
    }
}
