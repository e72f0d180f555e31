#!/usr/bin/env bash
# Sandbox dispatch measured end to end: `weir replay` with [sandbox] enabled against the in-repo
# test sandbox (the CAPE imitation of weir-sandbox-client, run as its own process on loopback).
#
# Three runs over one capture:
#   fast    sandbox up, rate limits raised: the capture and dispatch overlap, as in production
#   drain   the same capture with the sandbox down (everything waits in the spool), then the
#           sandbox comes up and a replay of a tiny capture over the same spool drains it: the
#           dispatcher's own throughput, without the capture's pace in the way
#   paced   CAPE's default pace (60 submissions/min, 2 in flight, a poll every 10 s) and
#           replay_wait = 60: how much is judged in that wait and what stays in the spool
# For each: files extracted, submitted, duplicates, skipped by policy, excluded, verdicts, wall
# seconds of dispatch, submissions/s, and whether every submitted file reached the sandbox
# byte-identical and once (SHA-256 of the bytes received against the filestore).
#
# Usage: scripts/sandbox-bench.sh [CAPTURE]
# Without CAPTURE: /tmp/bench/big.pcap when present, else the small profile of
# ../shared/tools/bench-pcap (made under /tmp/bench-small: about 3 minutes, needs root).
# WEIR_BENCH_NO_BUILD=1 uses the binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
shared=$repo/../shared

pcap=${1:-}
if [ -z "$pcap" ]; then
    if [ -f /tmp/bench/big.pcap ]; then
        pcap=/tmp/bench/big.pcap
    else
        pcap=/tmp/bench-small/small.pcap
        if [ ! -f "$pcap" ]; then
            echo "sandbox-bench: making the small capture (about 3 minutes, needs root)" >&2
            bash "$shared/tools/bench-pcap/make-bench-pcap.sh" --profile small --out /tmp/bench-small
        fi
    fi
fi
[ -f "$pcap" ] || { echo "sandbox-bench: $pcap not found" >&2; exit 2; }
tiny=$repo/pcaps/dns.pcap

if [ "${WEIR_BENCH_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --bin weir
    cargo build --release -p weir-sandbox-client --features test-sandbox --example test_sandbox_server
fi
weir=$bin/weir
server_bin=$bin/examples/test_sandbox_server
for b in "$weir" "$server_bin"; do
    [ -x "$b" ] || { echo "sandbox-bench: $b not built" >&2; exit 2; }
done

work=$(mktemp -d /tmp/weir-sandbox-bench.XXXXXX)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
token=weir-bench

# Starts the test sandbox on an ephemeral port; sets server_url.
start_server() {
    local log=$1
    "$server_bin" --listen 127.0.0.1:0 --token "$token" >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        server_url=$(sed -n 's/^listening on //p' "$log")
        [ -n "$server_url" ] && return 0
        sleep 0.1
    done
    echo "sandbox-bench: the test sandbox did not start:" >&2
    cat "$log" >&2
    exit 1
}

# write_config FILE URL SPOOL_DIR RATE CONCURRENCY POLL_MS WAIT_SECS
write_config() {
    cat >"$1" <<EOF
[output]
filestore = true

[sandbox]
enabled = true
api = "cape"
url = "$2"
token = "$token"
spool_dir = "$3"
rate_per_minute = $4
concurrency = $5
poll_interval_ms = $6
replay_wait = $7
EOF
}

# replay NAME CONFIG CAPTURE OUT: runs weir replay, keeps stderr, prints wall seconds to NAME.wall.
replay() {
    local name=$1 config=$2 capture=$3 out=$4
    local t0 t1
    t0=$(date +%s.%N)
    "$weir" replay "$capture" --out "$out" --config "$config" 2>"$work/$name.stderr" || {
        echo "sandbox-bench: weir replay failed ($name):" >&2
        tail -20 "$work/$name.stderr" >&2
        exit 1
    }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$name.wall"
}

summary() {
    curl -sf "${server_url}_test/summary" >"$1"
}

echo "capture: $pcap ($(du -h "$pcap" | cut -f1))"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- fast: sandbox up, pacing off
start_server "$work/fast.server.log"
write_config "$work/fast.toml" "$server_url" "$work/fast.spool" 6000000 4 50 600
replay fast "$work/fast.toml" "$pcap" "$work/fast.out"
summary "$work/fast.summary.json"
stop_server

# --- drain: the capture with the sandbox down, then a tiny replay over the full spool
down_url="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')/"
write_config "$work/fill.toml" "$down_url" "$work/drain.spool" 6000000 4 50 0
replay fill "$work/fill.toml" "$pcap" "$work/drain.out"
cp -a "$work/drain.spool" "$work/paced.spool"
start_server "$work/drain.server.log"
write_config "$work/drain.toml" "$server_url" "$work/drain.spool" 6000000 4 50 600
replay drain "$work/drain.toml" "$tiny" "$work/drain.out"
summary "$work/drain.summary.json"
stop_server

# --- paced: CAPE's default pace, the default 60 s wait, over the same full spool
start_server "$work/paced.server.log"
write_config "$work/paced.toml" "$server_url" "$work/paced.spool" 60 2 10000 60
mkdir -p "$work/paced.out"
ln -s "$work/drain.out/filestore" "$work/paced.out/filestore"
replay paced "$work/paced.toml" "$tiny" "$work/paced.out"
summary "$work/paced.summary.json"
stop_server

python3 - "$work" <<'PY'
import hashlib, json, os, re, sys
work = sys.argv[1]

def line(name, pattern):
    text = open(os.path.join(work, name + ".stderr")).read()
    m = re.search(pattern, text)
    return m

def dispatcher(name):
    m = line(name, r"sandbox: (\d+) submitted, (\d+) duplicate, (\d+) skipped by policy, (\d+) verdicts \((\d+) malicious\), (\d+) still pending")
    if not m:
        sys.exit("sandbox-bench: no sandbox summary line in %s.stderr" % name)
    keys = ["submitted", "duplicate", "skipped", "verdicts", "malicious", "pending"]
    d = dict(zip(keys, map(int, m.groups())))
    ex = line(name, r"excluded from scanning: (\d+) flows, (\d+) artifacts")
    d["excluded"] = int(ex.group(2)) if ex else 0
    return d

def extracted(out):
    fileinfo = 0
    with open(os.path.join(out, "eve.json")) as f:
        for l in f:
            if '"event_type":"fileinfo"' in l:
                fileinfo += 1
    distinct = sum(len(fs) for _, _, fs in os.walk(os.path.join(out, "filestore")))
    return fileinfo, distinct

def delivery(summary_path, out):
    s = json.load(open(summary_path))
    files, urls = s["files"], s["urls"]
    bad = []
    for sha, f in files.items():
        if f["sha256_of_bytes"] != sha:
            bad.append(sha + " hash")
            continue
        path = os.path.join(out, "filestore", sha[:2], sha)
        try:
            data = open(path, "rb").read()
        except OSError:
            bad.append(sha + " not in the filestore")
            continue
        if hashlib.sha256(data).hexdigest() != sha or len(data) != f["size"]:
            bad.append(sha + " differs from the filestore")
        if f["times"] != 1:
            bad.append("%s submitted %d times" % (sha, f["times"]))
    bad += ["%s submitted %d times" % (u, n) for u, n in urls.items() if n != 1]
    span = lambda a, b: (s[b] - s[a]) if s.get(a) and s.get(b) else 0.0
    return dict(files=len(files), urls=len(urls), tasks=s["tasks"], bad=bad,
                create_span=span("first_create", "last_create"),
                dispatch_span=span("first_create", "last_report"))

def wall(name):
    return float(open(os.path.join(work, name + ".wall")).read())

def report(title, d, x, ext, run_wall, note):
    print("== " + title)
    if ext:
        print("files extracted: %d fileinfo records, %d distinct files in the filestore" % ext)
    print("submitted %d (%d files, %d URLs reached the sandbox), duplicates %d, skipped by policy %d, excluded %d"
          % (d["submitted"], x["files"], x["urls"], d["duplicate"], d["skipped"], d["excluded"]))
    print("verdicts %d (%d malicious), still pending in the spool %d" % (d["verdicts"], d["malicious"], d["pending"]))
    subs = x["files"] + x["urls"]
    rate = subs / x["create_span"] if x["create_span"] > 0 else float("nan")
    vrate = d["verdicts"] / x["dispatch_span"] if x["dispatch_span"] > 0 else float("nan")
    print("dispatch: %.1f s from the first submission to the last report read; %.1f submissions/s, %.1f verdicts/s; replay wall %.1f s%s"
          % (x["dispatch_span"], rate, vrate, run_wall, note))
    ok = not x["bad"] and subs == d["submitted"]
    print("byte-identical and once: %s" % ("yes, every one of %d files" % x["files"] if ok else "NO: %s; %d received, %d submitted" % (x["bad"][:5], subs, d["submitted"])))
    return ok

ok = True
fast = dispatcher("fast")
ok &= report("fast (capture and dispatch overlap; pacing off, 4 in flight, polls every 50 ms)",
             fast, delivery(os.path.join(work, "fast.summary.json"), os.path.join(work, "fast.out")),
             extracted(os.path.join(work, "fast.out")), wall("fast"), "")
fill = dispatcher("fill")
drain = dispatcher("drain")
merged = dict(drain, duplicate=fill["duplicate"], skipped=fill["skipped"], excluded=fill["excluded"])
ok &= report("drain (spool filled with the sandbox down, then drained; pacing off, 4 in flight)",
             merged, delivery(os.path.join(work, "drain.summary.json"), os.path.join(work, "drain.out")),
             None, wall("drain"), " (tiny capture; the fill took %.1f s)" % wall("fill"))
paced = dispatcher("paced")
x = delivery(os.path.join(work, "paced.summary.json"), os.path.join(work, "drain.out"))
print("== paced (CAPE's default pace: 60/min, 2 in flight, a poll every 10 s; replay_wait 60 s)")
print("submitted %d, verdicts %d, still pending in the spool %d after a %.1f s replay"
      % (paced["submitted"], paced["verdicts"], paced["pending"], wall("paced")))
good = not x["bad"]
print("byte-identical and once: %s" % ("yes, every one of %d files" % x["files"] if good else "NO: %s" % x["bad"][:5]))
ok &= good
sys.exit(0 if ok else 1)
PY
