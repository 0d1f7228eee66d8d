#!/usr/bin/env bash
# Set up (if needed) and build the example problem set into out/ (Markdown and JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/derivgen build problems/ -o out/ --format md,json,tex,pdf,html "$@"
