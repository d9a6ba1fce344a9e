#!/usr/bin/env bash
# Make sure Debian's chromium is present for the Playwright tests (Playwright's
# own browser download cannot work here, so it launches this one by path).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "chromium is missing: apt-get install chromium" >&2; exit 1; fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
