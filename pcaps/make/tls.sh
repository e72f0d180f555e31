#!/usr/bin/env bash
# tls.sh - make pcaps/tls.pcap + pcaps/tls.manifest.json.
# openssl s_server (self-signed certificates; a second one chosen by SNI secure.weir.test) in
# weir-cap-srv on port 443; curl and Python ssl (tls_client.py) in weir-cap-cli.
CAPTURE_NAME=tls
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds curl:curl openssl:openssl
netns_up

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -set_serial 0x5745495201 \
  -subj "/CN=www.weir.test/O=Weir Test/C=NL" \
  -addext "subjectAltName=DNS:www.weir.test,DNS:*.weir.test,IP:$SRV_IP" \
  -keyout "$WORK/default.key" -out "$WORK/default.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -set_serial 0x5745495202 \
  -subj "/CN=secure.weir.test/O=Weir Secure Test" -addext "subjectAltName=DNS:secure.weir.test" \
  -keyout "$WORK/second.key" -out "$WORK/second.crt" 2>/dev/null
srv_bg "$WORK/s_server.log" openssl s_server -accept "$SRV_IP:443" -www -quiet \
  -cert "$WORK/default.crt" -key "$WORK/default.key" \
  -servername secure.weir.test -cert2 "$WORK/second.crt" -key2 "$WORK/second.key"
wait_listen tcp 443
capture_start "$WORK/tls.pcap"
cli python3 "$MAKE_DIR/tls_client.py" "$WORK" "$WORK/manifest.json" \
  "$(tool_versions_json "openssl=$(openssl version | awk '{print $2}')" "curl=$(curl --version | head -1 | awk '{print $2}')")"
capture_stop
cp "$WORK/tls.pcap" "$PCAPS_DIR/tls.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/tls.manifest.json"
log "wrote $PCAPS_DIR/tls.pcap ($(stat -c %s "$PCAPS_DIR/tls.pcap") bytes)"
