#!/usr/bin/env bash
# http-lossy.sh - make pcaps/http-lossy.pcap + manifest: http.sh's transactions with ~3% of the
# TCP segments dropped by nftables before they reach the veth (real retransmissions and
# out-of-order arrival for reassembly tests). Needs root.
LOSS_PERCENT=${LOSS_PERCENT:-3} CAPTURE_NAME=http-lossy exec "$(dirname "$0")/http.sh"
