#!/usr/bin/env python3
"""compare-flows: Weir's EVE flow records against tshark's view of the same capture.

For every capture given (files or directories), sums packets and bytes per direction of each
plain TCP/UDP 5-tuple (VLAN ids included) as tshark dissects them, and compares with the sums of
Weir's `flow` records for the same tuple. Frames that are IP fragments, inside tunnels, or not
TCP/UDP are left out on both sides (tshark and Suricata attribute those differently).

usage: compare-flows.py [--weir target/release/weir] CAPTURE...
Exit 1 when any tuple disagrees; prints one line per disagreement and a summary.
"""
import argparse, collections, glob, json, os, subprocess, sys, tempfile

FIELDS = ["frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "udp.srcport", "udp.dstport", "vlan.id", "ip.flags.mf", "ip.frag_offset", "ipv6.fragment",
          "gre", "vxlan", "erspan", "frame.protocols"]


def tshark_tuples(pcap):
    out = subprocess.run(["tshark", "-r", pcap, "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                          "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
                         + sum([["-e", f] for f in FIELDS], []), capture_output=True, text=True)
    sums = collections.defaultdict(lambda: [0, 0])  # (a, b) directed -> [pkts, bytes]
    for line in out.stdout.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        protos = v.get("frame.protocols", "")
        if v["gre"] or v["vxlan"] or v["erspan"] or protos.count(":ip:") + protos.count(":ipv6:") > 1:
            continue
        if v["ip.flags.mf"] in ("1", "True") or (v["ip.frag_offset"] not in ("", "0")) or v["ipv6.fragment"]:
            continue
        src = v["ip.src"] or v["ipv6.src"]
        dst = v["ip.dst"] or v["ipv6.dst"]
        if "," in src or not src:
            continue
        if v["tcp.srcport"]:
            proto, sp, dp = "TCP", v["tcp.srcport"], v["tcp.dstport"]
        elif v["udp.srcport"]:
            proto, sp, dp = "UDP", v["udp.srcport"], v["udp.dstport"]
        else:
            continue
        if "," in sp:
            continue
        vlan = v["vlan.id"]
        s = sums[(proto, vlan, src, int(sp), dst, int(dp))]
        s[0] += 1
        s[1] += int(v["frame.len"])
    return sums


def weir_tuples(weir, pcap):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([weir, "replay", pcap, "--out", out, "--quiet"], check=True, capture_output=True)
        sums = collections.defaultdict(lambda: [0, 0])
        with open(os.path.join(out, "eve.json")) as f:
            for line in f:
                e = json.loads(line)
                if e.get("event_type") != "flow" or e.get("proto") not in ("TCP", "UDP"):
                    continue
                vlan = ",".join(str(x) for x in e.get("vlan", []))
                fwd = (e["proto"], vlan, e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"])
                rev = (e["proto"], vlan, e["dest_ip"], e["dest_port"], e["src_ip"], e["src_port"])
                fl = e["flow"]
                sums[fwd][0] += fl["pkts_toserver"]; sums[fwd][1] += fl["bytes_toserver"]
                sums[rev][0] += fl["pkts_toclient"]; sums[rev][1] += fl["bytes_toclient"]
        return sums


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", default="target/release/weir")
    ap.add_argument("captures", nargs="+")
    args = ap.parse_args()
    pcaps = []
    for c in args.captures:
        pcaps += sorted(glob.glob(os.path.join(c, "**", "*.pcap*"), recursive=True)) if os.path.isdir(c) else [c]
    tuples = agree = 0
    bad = []
    for pcap in pcaps:
        t = tshark_tuples(pcap)
        w = weir_tuples(args.weir, pcap)
        for k in set(t) | set(w):
            if t.get(k, [0, 0]) == [0, 0] and w.get(k, [0, 0]) == [0, 0]:
                continue
            tuples += 1
            if t.get(k, [0, 0]) == w.get(k, [0, 0]):
                agree += 1
            else:
                bad.append((pcap, k, t.get(k, [0, 0]), w.get(k, [0, 0])))
    for pcap, k, tv, wv in bad:
        print("%s: %s %s %s:%s -> %s:%s vlan[%s]: tshark %s pkts/%s bytes, weir %s/%s"
              % (os.path.relpath(pcap), "", k[0], k[2], k[3], k[4], k[5], k[1], tv[0], tv[1], wv[0], wv[1]))
    print("compare-flows: %d of %d directed TCP/UDP tuples agree over %d captures" % (agree, tuples, len(pcaps)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
