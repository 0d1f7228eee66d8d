#!/usr/bin/env bash
# Install a headless browser for tests/test_browser.py: Debian's chromium, from apt, only if
# /usr/bin/chromium is missing. Needs root (CI and the developers' machines run as root);
# nothing is downloaded besides Debian packages. Idempotent.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-browser: /usr/bin/chromium is missing; run as root: apt-get install chromium" >&2
  exit 1
fi
echo "setup-browser: installing chromium (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
# fonts-noto-cjk: the Chinese handouts render with real glyphs in screenshots.
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
