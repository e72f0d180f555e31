#!/usr/bin/env bash
# all.sh - rebuild every capture in pcaps/ and verify them against their manifests with tshark.
# Usage: sudo pcaps/make/all.sh [NAME...]   (NAME = dns ftp http-lossy http pop3-imap smtp tls; default all)
#
# `weir replay pcaps/` (scripts/run.sh) reads the files of the directory sorted by name as ONE
# capture, so the scripts run in name order: the timestamps then never go backwards across files.
# Each capture script sets up and tears down its own namespaces, so they run one after another.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS_DIR=$(dirname "$HERE")
ALL=(dns ftp http-lossy http pop3-imap smtp tls)
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for n in "${NAMES[@]}"; do
  "$HERE/$n.sh"
done
python3 "$HERE/verify.py" "$PCAPS_DIR"
# Warn (do not fail) when a partial rebuild left the directory out of time order.
prev_end=0; prev=""
for n in "${ALL[@]}"; do
  f=$PCAPS_DIR/$n.pcap
  [ -f "$f" ] || continue
  read -r start end < <(capinfos -a -e -S -T -r "$f" | awk -F'\t' '{print $2, $3}')
  if awk -v a="$start" -v b="$prev_end" 'BEGIN { exit !(a < b) }'; then
    echo "WARNING: $n.pcap starts before $prev ends; rerun all.sh for a chronological pcaps/ directory" >&2
  fi
  prev_end=$end; prev=$n.pcap
done
ls -l "$PCAPS_DIR"/*.pcap >&2
