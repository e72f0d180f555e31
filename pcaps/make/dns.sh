#!/usr/bin/env bash
# dns.sh - make pcaps/dns.pcap + pcaps/dns.manifest.json.
# dnsmasq (authoritative for weir.test from command-line records, no upstream servers) in
# weir-cap-srv; dig (dns_client.py) in weir-cap-cli; tcpdump on the client end of the veth.
# frag.weir.test's TXT answer (~3.1 KB, EDNS buffer 4096) leaves dnsmasq as one UDP datagram that
# the kernel splits into IP fragments: the capture's defragmentation case.
CAPTURE_NAME=dns
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds dnsmasq:dnsmasq-base dig:bind9-dnsutils
netns_up

TXT250=$(printf 'x%.0s' $(seq 1 200))
srv_bg "$WORK/dnsmasq.log" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --listen-address="$SRV_IP" --port=53 --user=root --pid-file="$WORK/dnsmasq.pid" \
  --log-queries --log-facility=- --local=/weir.test/ --domain-needed --bogus-priv \
  --host-record=www.weir.test,"$SRV_IP" --address=/wild.weir.test/10.77.0.9 \
  --host-record=mail.weir.test,"$SRV_IP",fd77::25 \
  --cname=web.weir.test,www.weir.test --cname=cdn.weir.test,web.weir.test \
  --mx-host=weir.test,mail.weir.test,10 --mx-host=weir.test,backup-mx.weir.test,20 \
  --txt-record=weir.test,"v=spf1 ip4:10.77.0.0/24 -all" \
  --txt-record=_dmarc.weir.test,"v=DMARC1; p=reject; rua=mailto:dmarc@weir.test" \
  --txt-record=big.weir.test,"part1-$TXT250","part2-$TXT250","part3-$TXT250" \
  --txt-record=frag.weir.test,$(for i in $(seq 10 24); do printf '"part%d-%s",' "$i" "$TXT250"; done | sed 's/,$//') \
  --edns-packet-max=4096 \
  --srv-host=_xmpp-client._tcp.weir.test,chat.weir.test,5222,0,5 \
  --ptr-record=1.0.77.10.in-addr.arpa,www.weir.test
wait_listen udp 53
wait_listen tcp 53
capture_start "$WORK/dns.pcap"
cli python3 "$MAKE_DIR/dns_client.py" "$WORK/manifest.json" \
  "$(tool_versions_json "dnsmasq=$(dnsmasq --version | head -1 | awk '{print $3}')" "dig=$(dig -v 2>&1 | awk '{print $2}')")"
capture_stop
cp "$WORK/dns.pcap" "$PCAPS_DIR/dns.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/dns.manifest.json"
log "wrote $PCAPS_DIR/dns.pcap ($(stat -c %s "$PCAPS_DIR/dns.pcap") bytes)"
