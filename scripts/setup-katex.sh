#!/usr/bin/env bash
# Install KaTeX for the HTML handouts, idempotently. derivgen pre-renders the math of its HTML
# pages with node + the npm package `katex` (pinned in package-lock.json, installed into
# node_modules/ of the checkout) and copies KaTeX's CSS and fonts next to the pages: no page
# ever fetches anything from the network. The same `npm ci` installs the test-only
# devDependencies: MathJax 4 and 3 (node_modules/mathjax, node_modules/mathjax3), which
# tests/test_mathjax.py loads from file:// in Chromium; nothing of them goes into the wheel.
#
# Without npm, Debian's libjs-katex is the fallback (root only): the pages then render their
# math in the browser, with KaTeX's script copied next to them.
set -euo pipefail
cd "$(dirname "$0")/.."

STAMP="node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)"

if [ -f node_modules/katex/package.json ] && [ -f "$STAMP" ]; then
  exit 0
fi
if command -v npm >/dev/null 2>&1; then
  echo "setup-katex: installing katex from package-lock.json into node_modules/" >&2
  npm ci --no-audit --no-fund --loglevel=error
  rm -f node_modules/.installed-*
  touch "$STAMP"
  exit 0
fi
if [ -f /usr/share/javascript/katex/katex.min.js ]; then
  exit 0  # Debian's libjs-katex: math rendered in the browser
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-katex: npm not found; installing Debian's libjs-katex" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends libjs-katex >/dev/null
  exit 0
fi
echo "setup-katex: neither npm nor libjs-katex found: HTML handouts need KaTeX" \
     "(install Node.js and rerun this script, or apt-get install libjs-katex)" >&2
exit 1
