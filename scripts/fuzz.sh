#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20)
#
# Prints one line per target (runs, result) and exits non-zero if any target found a crash, a
# failed invariant, a timeout or an out-of-memory input. Findings are kept in
# fuzz/artifacts/<target>/ with the target's log; reproduce one with
#   fuzz/target/<host>/release/<target> fuzz/artifacts/<target>/<file>
# Corpora live in fuzz/corpus/<target>/ (not committed), seeded by fuzz/seeds.py from pcaps/,
# ../shared/{corpus,rules,feeds} and the example config, and grow from run to run.
#
# Environment: FUZZ_TARGETS="a b" runs only those; WEIR_SHARED (default ../shared) names the
# shared folder; WEIR_FUZZ_TARGET_DIR (default fuzz/target) the build directory.
set -euo pipefail

seconds="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${WEIR_SHARED:-$root/../shared}"
target_dir="${WEIR_FUZZ_TARGET_DIR:-$root/fuzz/target}"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz 0.13" >&2
    cargo install cargo-fuzz --version '0.13.*' --locked || cargo install cargo-fuzz --version '0.13.*'
fi

# Release code with debug assertions and overflow checks (-a): arithmetic on wire values must
# not wrap silently. No sanitizer: AddressSanitizer needs a nightly compiler, and without unsafe
# code libFuzzer's own crash, timeout and memory checks are what matter.
build_start=$(date +%s)
cargo fuzz build -O -a --sanitizer none --target-dir "$target_dir" >&2
echo "fuzz: built in $(( $(date +%s) - build_start )) s"

host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$host/release"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

if command -v python3 >/dev/null 2>&1; then
    python3 fuzz/seeds.py fuzz/corpus "$root" "$shared" >/dev/null
else
    echo "fuzz: python3 not found, corpora start from the hand-made seeds only" >&2
    for t in $targets; do
        mkdir -p "fuzz/corpus/$t"
        if [ -d "fuzz/seeds/$t" ]; then cp fuzz/seeds/"$t"/* "fuzz/corpus/$t/"; fi
    done
fi

failed=0
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t.log"
    rc=0
    # -timeout: one input running this long is a finding (a parser stuck on crafted input).
    # -rss_limit_mb: a process over this is a finding (unbounded memory).
    "$bin_dir/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${runs:-?} runs, ok"
    else
        failed=1
        artifact="$(grep -o "fuzz/artifacts/$t/[a-z-]*[0-9a-f]*" "$log" | tail -1 || true)"
        why="$(grep -m1 -E "panicked at|ERROR: libFuzzer" -A1 "$log" | tr '\n' ' ' | cut -c1-200 || true)"
        echo "fuzz $t: ${runs:-?} runs, FINDING ${artifact:-(see $log)}: $why"
    fi
done
exit "$failed"
