use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use weir_core::{Direction, FlowKey, IpProto, Timestamp, Vlans};
use weir_flow::{ClosedFlow, EndReason, FlowConfig, FlowTable, Lifecycle, WhenFull};

fn key(proto: IpProto, client: u8, sport: u16) -> FlowKey {
    FlowKey {
        src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, client)),
        dst_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        src_port: sport,
        dst_port: 53,
        proto,
        vlans: Vlans::default(),
        tunnel_depth: 0,
    }
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs_nanos(1_700_000_000 + secs, 0)
}

fn table(max_flows: usize) -> FlowTable<u32> {
    FlowTable::new(FlowConfig { max_flows, ..FlowConfig::default() })
}

#[test]
fn both_directions_count_on_one_flow() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let k = key(IpProto::UDP, 1, 5000);
    let (h1, d1) = t.lookup(&k, at(0), 100, || 0, &mut ended).unwrap();
    let (h2, d2) = t.lookup(&k.reversed(), at(1), 250, || 1, &mut ended).unwrap();
    let (_, d3) = t.lookup(&k, at(2), 60, || 2, &mut ended).unwrap();
    assert_eq!(h1, h2);
    assert_eq!((d1, d2, d3), (Direction::ToServer, Direction::ToClient, Direction::ToServer));
    let f = t.get(h1).unwrap();
    assert_eq!(f.pkts, [2, 1]);
    assert_eq!(f.bytes, [160, 250]);
    assert_eq!(f.key, k, "the first packet's source is the client");
    assert_eq!(f.state, 0, "state made once, on creation");
    assert_eq!(f.lifecycle, Lifecycle::Established, "a UDP reply establishes the flow");
    assert_eq!(f.last_seen, at(2));
    assert!(ended.is_empty());
}

#[test]
fn vlan_and_tunnel_depth_separate_flows() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let plain = key(IpProto::TCP, 1, 1000);
    let mut tagged = plain;
    tagged.vlans.push(6);
    let mut tunnelled = plain;
    tunnelled.tunnel_depth = 1;
    let a = t.lookup(&plain, at(0), 1, || 0, &mut ended).unwrap().0;
    let b = t.lookup(&tagged, at(0), 1, || 0, &mut ended).unwrap().0;
    let c = t.lookup(&tunnelled, at(0), 1, || 0, &mut ended).unwrap().0;
    assert!(a != b && b != c && a != c);
    assert_eq!(t.len(), 3);
}

#[test]
fn timeouts_follow_protocol_and_state() {
    let mut t = table(100);
    let mut ended = Vec::new();
    let udp_new = key(IpProto::UDP, 1, 1);
    let udp_est = key(IpProto::UDP, 2, 2);
    let tcp_new = key(IpProto::TCP, 3, 3);
    t.lookup(&udp_new, at(0), 1, || 0, &mut ended).unwrap();
    t.lookup(&udp_est, at(0), 1, || 0, &mut ended).unwrap();
    t.lookup(&udp_est.reversed(), at(0), 1, || 0, &mut ended).unwrap();
    t.lookup(&tcp_new, at(0), 1, || 0, &mut ended).unwrap();

    t.expire(at(30), &mut ended);
    assert!(ended.is_empty(), "30 s idle is not past the 30 s UDP new timeout");
    t.expire(at(31), &mut ended);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].flow.key, udp_new);
    assert_eq!(ended[0].reason, EndReason::Timeout);
    ended.clear();

    t.expire(at(61), &mut ended);
    assert_eq!(ended.iter().map(|c| c.flow.key).collect::<Vec<_>>(), vec![tcp_new]);
    ended.clear();
    t.expire(at(300), &mut ended);
    assert!(ended.is_empty());
    t.expire(at(301), &mut ended);
    assert_eq!(ended.iter().map(|c| c.flow.key).collect::<Vec<_>>(), vec![udp_est]);
    assert!(t.is_empty());
    assert_eq!(t.stats().timed_out, 3);
}

#[test]
fn lifecycle_change_moves_the_flow_to_its_new_timeout() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let k = key(IpProto::TCP, 1, 1);
    let (h, _) = t.lookup(&k, at(0), 1, || 0, &mut ended).unwrap();
    t.set_lifecycle(h, Lifecycle::Established);
    t.expire(at(599), &mut ended);
    assert!(ended.is_empty(), "established TCP lives 600 s");
    t.set_lifecycle(h, Lifecycle::Closed);
    t.expire(at(61), &mut ended);
    assert_eq!(ended.len(), 1, "closed TCP lives 60 s");
    assert_eq!(ended[0].flow.lifecycle, Lifecycle::Closed);
}

#[test]
fn a_packet_on_a_timed_out_flow_starts_a_new_one() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let k = key(IpProto::UDP, 1, 1);
    let (h1, _) = t.lookup(&k, at(0), 1, || 0, &mut ended).unwrap();
    let id1 = t.get(h1).unwrap().id;
    let (h2, dir) = t.lookup(&k.reversed(), at(100), 1, || 1, &mut ended).unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, EndReason::Timeout);
    assert_eq!(ended[0].flow.id, id1);
    let f = t.get(h2).unwrap();
    assert_ne!(f.id, id1);
    assert_eq!(dir, Direction::ToServer, "the reviving packet's sender is the new client");
    assert_eq!(f.key, k.reversed());
    assert!(t.get(h1).is_none(), "the old handle finds nothing");
}

#[test]
fn a_full_table_refusing_new_flows_keeps_the_ones_in_use_until_one_is_idle() {
    let config = FlowConfig {
        max_flows: 3,
        when_full: WhenFull::RefuseNew { idle: std::time::Duration::from_secs(30) },
        ..FlowConfig::default()
    };
    let mut t: FlowTable<u32> = FlowTable::new(config);
    let mut ended = Vec::new();
    let keys: Vec<FlowKey> = (1..=3).map(|i| key(IpProto::TCP, i, 1000)).collect();
    for (i, k) in keys.iter().enumerate() {
        t.lookup(k, at(i as u64), 1, || 0, &mut ended).unwrap();
    }
    // A flood of new tuples while every flow was seen within 30 s: refused, nothing ended.
    for i in 0..100 {
        assert!(t.lookup(&key(IpProto::TCP, 100 + i, 1000), at(10), 1, || 0, &mut ended).is_none());
    }
    assert_eq!((t.len(), ended.len(), t.stats().refused, t.stats().evicted), (3, 0, 100, 0));
    // Known flows still count their packets.
    assert!(t.lookup(&keys[0], at(20), 1, || 0, &mut ended).is_some());
    // 31 s after the second flow's last packet it is idle enough to give way.
    assert!(t.lookup(&key(IpProto::TCP, 9, 1000), at(32), 1, || 0, &mut ended).is_some());
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].flow.key, keys[1]);
    assert_eq!(t.stats().evicted, 1);
}

#[test]
fn a_full_table_evicts_the_least_recently_seen_flow() {
    let mut t = table(3);
    let mut ended = Vec::new();
    let keys: Vec<FlowKey> = (1..=3).map(|i| key(IpProto::TCP, i, 1000)).collect();
    for (i, k) in keys.iter().enumerate() {
        t.lookup(k, at(i as u64), 1, || 0, &mut ended).unwrap();
    }
    // Refresh the oldest, so the second becomes least recent.
    t.lookup(&keys[0], at(5), 1, || 0, &mut ended).unwrap();
    t.lookup(&key(IpProto::TCP, 9, 1000), at(6), 1, || 0, &mut ended).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].flow.key, keys[1]);
    assert_eq!(ended[0].reason, EndReason::Forced);
    assert_eq!(t.stats().evicted, 1);
}

#[test]
fn reverse_swaps_orientation_and_counters() {
    let mut t = table(3);
    let mut ended = Vec::new();
    let k = key(IpProto::TCP, 1, 1000);
    let (h, _) = t.lookup(&k, at(0), 40, || 0, &mut ended).unwrap();
    t.reverse(h);
    let f = t.get(h).unwrap();
    assert_eq!(f.key, k.reversed());
    assert_eq!((f.pkts, f.bytes), ([0, 1], [0, 40]));
    // The next packet from the same sender now counts to the client.
    let (h2, dir) = t.lookup(&k, at(1), 40, || 0, &mut ended).unwrap();
    assert_eq!((h2, dir), (h, Direction::ToClient));
}

#[test]
fn drain_ends_everything_oldest_first() {
    let mut t = table(10);
    let mut ended: Vec<ClosedFlow<u32>> = Vec::new();
    for i in 1..=4u8 {
        t.lookup(&key(IpProto::UDP, i, 1), at(u64::from(i)), 1, || u32::from(i), &mut ended).unwrap();
    }
    // Seen again: now the most recent.
    t.lookup(&key(IpProto::UDP, 2, 1), at(5), 1, || 0, &mut ended).unwrap();
    t.drain(EndReason::Shutdown, &mut ended);
    assert!(t.is_empty());
    let order: Vec<u32> = ended.iter().map(|c| c.flow.state).collect();
    assert_eq!(order, vec![1, 3, 4, 2]);
    assert!(ended.iter().all(|c| c.reason == EndReason::Shutdown));
}

#[test]
fn flow_ids_are_distinct_and_json_exact() {
    let mut t = table(100_000);
    let mut ended = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for i in 0..20_000u32 {
        let k = key(IpProto::UDP, (i % 250) as u8, (i / 250) as u16);
        let (h, _) = t.lookup(&k, at(0), 1, || 0, &mut ended).unwrap();
        let id = t.get(h).unwrap().id;
        assert!(id > 0 && id < (1 << 53));
        assert!(ids.insert(id));
    }
}

#[test]
fn flow_record_has_suricata_fields() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let k = key(IpProto::UDP, 1, 5000);
    t.lookup(&k, at(0), 100, || 0, &mut ended).unwrap();
    t.lookup(&k.reversed(), at(2), 200, || 0, &mut ended).unwrap();
    t.drain(EndReason::Shutdown, &mut ended);
    let r = weir_flow::flow_record(&ended[0].flow, ended[0].reason, None);
    let v = serde_json::Value::Object(r);
    assert_eq!(v["event_type"], "flow");
    assert_eq!(v["src_ip"], "10.0.0.1");
    assert_eq!(v["src_port"], 5000);
    assert_eq!(v["dest_port"], 53);
    assert_eq!(v["proto"], "UDP");
    assert_eq!(v["timestamp"], v["flow"]["start"]);
    assert_eq!(v["flow"]["pkts_toserver"], 1);
    assert_eq!(v["flow"]["pkts_toclient"], 1);
    assert_eq!(v["flow"]["bytes_toserver"], 100);
    assert_eq!(v["flow"]["bytes_toclient"], 200);
    assert_eq!(v["flow"]["age"], 2);
    assert_eq!(v["flow"]["state"], "established");
    assert_eq!(v["flow"]["reason"], "shutdown");
    assert_eq!(v["flow"]["alerted"], false);
}

#[derive(Debug, Clone)]
struct Packet {
    client: u8,
    reply: bool,
    advance: u64,
}

fn packets() -> impl Strategy<Value = Vec<Packet>> {
    prop::collection::vec(
        (0u8..12, any::<bool>(), prop_oneof![Just(0u64), 1u64..5, 25u64..40, 290u64..320])
            .prop_map(|(client, reply, advance)| Packet { client, reply, advance }),
        1..200,
    )
}

proptest! {
    /// The table against a naive model: a map from flow to (last seen, established), expired by
    /// scanning every entry. Both must end the same flows at the same packet times, and the table
    /// must never hold more than its cap.
    #[test]
    fn expiry_and_eviction_agree_with_a_naive_model(pkts in packets(), cap in 1usize..8) {
        let mut t = table(cap);
        // client -> (last seen, established, touch order, first packet was a reply)
        let mut model: HashMap<u8, (u64, bool, u64, bool)> = HashMap::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        for p in pkts {
            now += p.advance;
            let mut ended = Vec::new();
            t.expire(at(now), &mut ended);
            let mut want: Vec<u8> = model
                .iter()
                .filter(|(_, (last, est, _, _))| now - last > if *est { 300 } else { 30 })
                .map(|(c, _)| *c)
                .collect();
            for c in &want { model.remove(c); }
            let mut got: Vec<u8> = ended.iter().map(|c| {
                let k = c.flow.key;
                let a = if k.src_port == 4000 { k.src_ip } else { k.dst_ip };
                match a { IpAddr::V4(a) => a.octets()[3], IpAddr::V6(_) => 0 }
            }).collect();
            got.sort();
            want.sort();
            prop_assert_eq!(got, want);

            let k = key(IpProto::UDP, p.client, 4000);
            let k = if p.reply { k.reversed() } else { k };
            let mut ended = Vec::new();
            t.lookup(&k, at(now), 1, || 0, &mut ended).unwrap();
            seq += 1;
            if !model.contains_key(&p.client) && model.len() >= cap {
                let victim = *model.iter().min_by_key(|(_, (_, _, order, _))| *order).unwrap().0;
                model.remove(&victim);
                prop_assert_eq!(ended.len(), 1);
            } else {
                prop_assert!(ended.is_empty());
            }
            let entry = model.entry(p.client).or_insert((now, false, seq, p.reply));
            if entry.3 != p.reply {
                entry.1 = true;
            }
            entry.0 = now;
            entry.2 = seq;
            prop_assert!(t.len() <= cap);
            prop_assert_eq!(t.len(), model.len());
        }
    }
}
