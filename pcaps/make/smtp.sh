#!/usr/bin/env bash
# smtp.sh - make pcaps/smtp.pcap + pcaps/smtp.manifest.json.
# aiosmtpd (smtp_server.py) in weir-cap-srv on port 25; smtplib and a raw pipelining client
# (smtp_client.py) in weir-cap-cli; tcpdump on the client end of the veth. Needs root.
CAPTURE_NAME=smtp
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_venv
netns_up

: > "$WORK/server.jsonl"
srv_bg "$WORK/server.log" "$PY" "$MAKE_DIR/smtp_server.py" "$SRV_IP" 25 "$WORK/server.jsonl"
wait_listen tcp 25
sleep 0.5   # aiosmtpd's controller self-test connection (inside the server namespace) settles
capture_start "$WORK/smtp.pcap"
cli "$PY" "$MAKE_DIR/smtp_client.py" "$WORK/server.jsonl" "$WORK/manifest.json" \
  "$(tool_versions_json "aiosmtpd=$("$PY" -c 'import aiosmtpd; print(aiosmtpd.__version__)')")"
capture_stop
cp "$WORK/smtp.pcap" "$PCAPS_DIR/smtp.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/smtp.manifest.json"
log "wrote $PCAPS_DIR/smtp.pcap ($(stat -c %s "$PCAPS_DIR/smtp.pcap") bytes)"
