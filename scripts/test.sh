#!/usr/bin/env bash
# Set up (if needed) and run the default test suite. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the slow tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The web app's browser tests drive a system Chromium (Debian's `chromium` package) through
# Playwright. Install it where that is possible (root with apt-get); elsewhere those tests skip
# with one line saying why.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && [ -z "${MEDSEG_CHROMIUM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing chromium for the browser tests (apt-get)"
  { apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; } \
    || echo "==> chromium could not be installed: the browser tests will be skipped"
fi
exec .venv/bin/python -m pytest "$@"
