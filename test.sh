#!/usr/bin/env bash
# Every test: set-up on first use (scripts/setup.sh), Debian's chromium + chromium-driver for the browser tests
# when /usr/bin/chromium is missing (needs root or password-less sudo), then pytest. Extra arguments go to pytest,
# e.g. ./test.sh tests/test_demo.py -x
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo";
    else sudo="none"; fi
    if [ "$sudo" = none ]; then
        echo "test.sh: /usr/bin/chromium is missing and this user cannot install it (not root, no password-less" \
             "sudo): the browser tests will be skipped. Install Debian's chromium and chromium-driver to run them." >&2
    else
        echo "test.sh: installing Debian's chromium and chromium-driver for the browser tests" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
fi

exec "$VENV/bin/python" -m pytest "$@"
