#!/usr/bin/env bash
# Set up derivgen in a virtual environment inside the checkout (.venv), idempotently.
# Everything the project needs is installed by this script and the ones it calls; nothing is
# assumed to be on the machine beyond Python 3.11+ with venv and pip.
#   scripts/setup-katex.sh    KaTeX (npm, pinned in package-lock.json) for the HTML handouts
#   scripts/setup-tex.sh      TeX Live from Debian's packages, for the PDF handouts
#   scripts/setup-browser.sh  Chromium, for the browser tests (scripts/test.sh calls it)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ]; then
  echo "setup: installing derivgen and its test dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
bash scripts/setup-katex.sh
bash scripts/setup-tex.sh
