#!/usr/bin/env bash
# Headless Chromium for tests/report/test_html_report.py (Debian's package; root and apt-get).
set -euo pipefail
command -v chromium >/dev/null && exit 0
command -v apt-get >/dev/null || { echo "chromium missing and no apt-get" >&2; exit 1; }
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
