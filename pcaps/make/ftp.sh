#!/usr/bin/env bash
# ftp.sh - make pcaps/ftp.pcap + pcaps/ftp.manifest.json.
# pyftpdlib (ftp_server.py) in weir-cap-srv on port 21 (passive ports 30000-30099); ftplib
# (ftp_client.py) in weir-cap-cli; tcpdump on the client end of the veth. Needs root.
CAPTURE_NAME=ftp
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_venv
netns_up

ROOT=$WORK/ftproot
mkdir -p "$ROOT/pub" "$ROOT/incoming"
"$PY" - "$ROOT/pub" <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ['MAKE_DIR'])
import common
for name, data in common.corpus().items():
    path = os.path.join(sys.argv[1], name)
    with open(path, 'wb') as f:
        f.write(data)
    os.utime(path, (1704067200, 1704067200))   # fixed mtime: LIST output is the same every run
PYEOF
: > "$WORK/server.jsonl"
srv_bg "$WORK/server.log" "$PY" "$MAKE_DIR/ftp_server.py" "$SRV_IP" 21 "$ROOT" "$WORK/server.jsonl"
wait_listen tcp 21
capture_start "$WORK/ftp.pcap"
cli "$PY" "$MAKE_DIR/ftp_client.py" "$ROOT" "$WORK/server.jsonl" "$WORK/manifest.json" \
  "$(tool_versions_json "pyftpdlib=$("$PY" -c 'import pyftpdlib; print(pyftpdlib.__ver__)')")"
capture_stop
cp "$WORK/ftp.pcap" "$PCAPS_DIR/ftp.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/ftp.manifest.json"
log "wrote $PCAPS_DIR/ftp.pcap ($(stat -c %s "$PCAPS_DIR/ftp.pcap") bytes)"
