#!/bin/sh
# Regenerates downloads.pcap: real client (curl) and server (download_server.py) over
# loopback. Run as root from this directory. The served files are random or fixed content in
# ./served; served.sha256 lists their SHA-256 for the test.
set -eu
PORT=${PORT:-18099}
mkdir -p served
head -c 150000 /dev/urandom > served/random.bin
{ printf 'MZ\220\0'; head -c 60000 /dev/urandom; } > served/fake.exe
python3 -c "print('<!DOCTYPE html><html><body>' + ''.join('<p>line %d</p>' % i for i in range(4000)) + '</body></html>')" > served/page.html
python3 -c "import json; print(json.dumps([{'id': i, 'name': 'item%d' % i} for i in range(3000)]))" > served/data.json
{ printf '%%PDF-1.4\n'; head -c 40000 /dev/urandom; } > served/report.pdf
head -c 30000 /dev/urandom > served/upload.bin
(cd served && sha256sum random.bin fake.exe page.html data.json report.pdf upload.bin > ../served.sha256)
python3 download_server.py "$PORT" & SERVER=$!
sleep 1
tcpdump -i lo -s 0 -U -w downloads.pcap "tcp port $PORT" & DUMP=$!
sleep 1
B="http://127.0.0.1:$PORT"
curl -s -o /dev/null "$B/random.bin"
curl -s -o /dev/null --compressed "$B/page.html"
curl -s -o /dev/null --compressed "$B/data.json"
curl -s -o /dev/null -o /dev/null "$B/chunked.exe" "$B/report"
curl -s -o /dev/null -F "file=@served/upload.bin;filename=upload.bin" -F "note=hello" "$B/upload"
sleep 1
kill "$DUMP" "$SERVER"
wait 2>/dev/null || true
# The served bodies are reproducible from the capture; keep only the manifest.
rm -rf served
