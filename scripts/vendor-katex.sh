#!/usr/bin/env bash
# Refresh derivgen/static/katex/ (shipped in the wheel: KaTeX's CSS, woff2 fonts and script, so
# a pip-installed derivgen renders math offline anywhere) from node_modules/katex, the version
# pinned in package-lock.json. Run after changing that pin; tests/test_package.py checks the
# copy matches node_modules/katex when both are there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-katex.sh
src=node_modules/katex
dest=derivgen/static/katex
rm -rf "$dest"
mkdir -p "$dest/fonts"
cp "$src/dist/katex.min.css" "$src/dist/katex.min.js" "$src/LICENSE" "$dest/"
cp "$src"/dist/fonts/KaTeX_*.woff2 "$dest/fonts/"
version=$(node -p "require('./$src/package.json').version")
printf '{"name": "katex", "version": "%s", "license": "MIT", "note": "KaTeX dist files vendored by scripts/vendor-katex.sh"}\n' "$version" > "$dest/package.json"
echo "vendor-katex: KaTeX $version in $dest ($(du -sh "$dest" | cut -f1))" >&2
