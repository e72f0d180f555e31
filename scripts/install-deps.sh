#!/usr/bin/env bash
# Installs the Debian packages Weir builds and tests with, when they are missing. Needs root (or
# sudo) only when something is missing. Safe to run repeatedly.
set -euo pipefail

need=()
for pkg in build-essential pkg-config libpcap-dev libhyperscan-dev libpcre2-dev python3-yaml curl iproute2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# tshark and tcpdump are only needed to remake pcaps/ and for the live tests.
if [ "${WEIR_WITH_CAPTURE_TOOLS:-0}" = 1 ]; then
    for pkg in tshark tcpdump tcpreplay iproute2; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
fi
# Squid is only needed by the ICAP test through a real proxy (scripts/test.sh asks for it).
if [ "${WEIR_WITH_TEST_TOOLS:-0}" = 1 ]; then
    for pkg in squid python3; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
fi

if [ "${#need[@]}" -gt 0 ]; then
    echo "install-deps: installing ${need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # Packages with a service (squid) are installed without starting it: the tests start their
    # own instance with their own config.
    no_start=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        no_start=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$no_start" >/dev/null
        $SUDO chmod +x "$no_start"
    fi
    $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    [ -z "$no_start" ] || $SUDO rm -f "$no_start"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found; install a Rust toolchain (1.95 or newer) first" >&2
    exit 1
fi
