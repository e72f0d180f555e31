#!/usr/bin/env bash
# http.sh - make pcaps/http.pcap + pcaps/http.manifest.json.
# A Python HTTP/1.1 server (http_server.py) in weir-cap-srv, curl and Python http.client
# (http_client.py) in weir-cap-cli, tcpdump on the client end of the veth. Needs root.
# With LOSS_PERCENT=N (see http-lossy.sh) the veth pair is joined through a bridge in a middle
# namespace whose nftables forward chain drops about N% of the TCP segments in each direction;
# tcpdump listens on the bridge port towards the client, so server->client losses are gaps
# followed by retransmissions and client->server losses are seen twice (the capture point saw
# the segment, the server did not).
CAPTURE_NAME=${CAPTURE_NAME:-http}
LOSS_PERCENT=${LOSS_PERCENT:-0}
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds curl:curl
[ "$LOSS_PERCENT" = 0 ] || ensure_cmds nft:nftables
ensure_venv
[ "$LOSS_PERCENT" = 0 ] || MIDDLE_NS=1
netns_up

OUT_PCAP=$PCAPS_DIR/$CAPTURE_NAME.pcap
OUT_MAN=$PCAPS_DIR/$CAPTURE_NAME.manifest.json
if [ "$LOSS_PERCENT" != 0 ]; then
  mid nft add table bridge weirloss
  mid nft add chain bridge weirloss lossy '{ type filter hook forward priority 0; }'
  mid nft add rule bridge weirloss lossy tcp sport 80 numgen random mod 100 '<' "$LOSS_PERCENT" counter drop
  mid nft add rule bridge weirloss lossy tcp dport 80 numgen random mod 100 '<' "$LOSS_PERCENT" counter drop
fi
: > "$WORK/server.jsonl"
srv_bg "$WORK/server.log" "$PY" "$MAKE_DIR/http_server.py" "$SRV_IP" 80 "$WORK/server.jsonl"
wait_listen tcp 80
capture_start "$WORK/http.pcap"
cli env CAPTURE="$CAPTURE_NAME" LOSS_PERCENT="$LOSS_PERCENT" "$PY" "$MAKE_DIR/http_client.py" "$WORK" "$WORK/server.jsonl" "$WORK/manifest.json" \
  "$(tool_versions_json "curl=$(curl --version | head -1 | awk '{print $2}')")"
capture_stop
if [ "$LOSS_PERCENT" != 0 ]; then
  counts=($(mid nft list chain bridge weirloss lossy | sed -n 's/.*packets \([0-9]*\).*/\1/p'))
  log "bridge dropped ${counts[0]} server->client and ${counts[1]} client->server segments"
  "$PY" - "$WORK/manifest.json" "${counts[0]}" "${counts[1]}" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
m['dropped_segments'] = dict(to_client_not_captured=int(sys.argv[2]), to_server_captured_then_lost=int(sys.argv[3]))
json.dump(m, open(sys.argv[1], 'w'), indent=1)
open(sys.argv[1], 'a').write('\n')
PYEOF
fi
cp "$WORK/http.pcap" "$OUT_PCAP"
cp "$WORK/manifest.json" "$OUT_MAN"
log "wrote $OUT_PCAP ($(stat -c %s "$OUT_PCAP") bytes) and $OUT_MAN"
