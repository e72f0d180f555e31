#!/usr/bin/env bash
# http.sh - make pcaps/http.pcap + pcaps/http.manifest.json.
# A Python HTTP/1.1 server (http_server.py) in weir-cap-srv, curl and Python http.client
# (http_client.py) in weir-cap-cli, tcpdump on the client end of the veth. Needs root.
CAPTURE_NAME=http
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds curl:curl
ensure_venv
netns_up

OUT_PCAP=$PCAPS_DIR/http.pcap
OUT_MAN=$PCAPS_DIR/http.manifest.json
: > "$WORK/server.jsonl"
srv_bg "$WORK/server.log" "$PY" "$MAKE_DIR/http_server.py" "$SRV_IP" 80 "$WORK/server.jsonl"
wait_listen tcp 80
capture_start "$WORK/http.pcap"
cli "$PY" "$MAKE_DIR/http_client.py" "$WORK" "$WORK/server.jsonl" "$WORK/manifest.json" \
  "$(tool_versions_json "curl=$(curl --version | head -1 | awk '{print $2}')")"
capture_stop
cp "$WORK/http.pcap" "$OUT_PCAP"
cp "$WORK/manifest.json" "$OUT_MAN"
log "wrote $OUT_PCAP ($(stat -c %s "$OUT_PCAP") bytes) and $OUT_MAN"
