#!/usr/bin/env bash
# The test suite, as CI runs it: unit, property and integration tests of every crate, then the
# suricata-verify corpus scored by sv-check (when ../shared is beside the repo), which must not
# fall below the pass count the project has reached.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts binaries (CARGO_TARGET_DIR when set).
bin="${CARGO_TARGET_DIR:-target}/release"
WEIR_WITH_TEST_TOOLS=1 scripts/install-deps.sh

cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/weir-cargo-test.log
# cargo's own summary lines ("test result: ...") above are what CI reads; make sure at least one ran.
grep -q "test result: ok" /tmp/weir-cargo-test.log

shared="../shared"
if [ -d "$shared/corpus/suricata-verify" ]; then
    cargo build --release --bin weir
    min_pass=$(cat scripts/sv-min-pass 2>/dev/null || echo 0)
    python3 "$shared/tools/sv-check" --sensor "$bin/weir" --min-pass "$min_pass" \
        "$shared/corpus/suricata-verify"
    # Cases that need a setting Suricata's test passes on its command line (sv-check passes none):
    # run each with Weir's equivalent config from tests/sv-config/; all must pass.
    wrapper=$(mktemp)
    trap 'rm -f "$wrapper"' EXIT
    for config in tests/sv-config/*.toml; do
        case_name=$(basename "$config" .toml)
        printf '#!/bin/sh\nexec "%s" "$@" --config "%s"\n' "$(cd "$bin" && pwd)/weir" "$PWD/$config" > "$wrapper"
        chmod +x "$wrapper"
        python3 "$shared/tools/sv-check" --sensor "$wrapper" --min-pass 1 "$shared/corpus/suricata-verify/$case_name"
    done
else
    echo "test.sh: $shared/corpus/suricata-verify not found; corpus check skipped" >&2
fi

# Every fuzz target for a bounded time (builds them first; a finding fails the run).
scripts/fuzz.sh "${WEIR_FUZZ_SECONDS:-12}"
