#!/usr/bin/env bash
# all.sh - rebuild every capture in pcaps/, the combined pcaps/sample.pcap, and verify them all.
# Usage: sudo pcaps/make/all.sh [NAME...]   (NAME = dns http smtp tls ftp pop3-imap; default all)
# Each capture script sets up and tears down its own namespaces, so they run one after another.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PCAPS_DIR=$(dirname "$HERE")
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(dns http smtp tls ftp pop3-imap)
for n in "${NAMES[@]}"; do
  "$HERE/$n.sh"
done
# sample.pcap: the default input of the README's run command, a chronological merge of four
# captures (mergecap from wireshark-common; tshark's package depends on it).
command -v mergecap >/dev/null || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tshark >/dev/null; }
SAMPLE=(dns http smtp tls)
mergecap -F pcap -w "$PCAPS_DIR/sample.pcap" $(printf "$PCAPS_DIR/%s.pcap " "${SAMPLE[@]}")
python3 - "$PCAPS_DIR" "${SAMPLE[@]}" <<'PYEOF'
import json, os, sys
d, names = sys.argv[1], sys.argv[2:]
items = []
for n in names:
    with open(os.path.join(d, n + '.manifest.json')) as f:
        m = json.load(f)
    for it in m['items']:
        items.append(dict(capture=m['capture'], **it))
doc = dict(format='weir-pcap-manifest/1', capture='sample.pcap', made_by='pcaps/make/all.sh',
           summary='mergecap of %s; items are those of the source manifests, each naming its capture'
                   % ', '.join(n + '.pcap' for n in names),
           sources=[n + '.manifest.json' for n in names], items=items)
with open(os.path.join(d, 'sample.manifest.json'), 'w') as f:
    json.dump(doc, f, indent=1)
    f.write('\n')
PYEOF
python3 "$HERE/verify.py" "$PCAPS_DIR"
ls -l "$PCAPS_DIR"/*.pcap >&2
