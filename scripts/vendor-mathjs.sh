#!/usr/bin/env bash
# Refresh derivgen/static/mathjs/ (shipped in the wheel: math.js's browser bundle, its LICENSE and
# NOTICE) from node_modules/mathjs, the version pinned in package-lock.json. The HTML problem
# sheets' self-check boxes (derivgen/selfcheck.py, static/derivgen-check.js) parse answers with
# it, offline; tests/test_selfcheck.py checks the copy matches node_modules/mathjs when both
# are there. Run after changing the pin.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-katex.sh  # npm ci: installs every package of package-lock.json
src=node_modules/mathjs
dest=derivgen/static/mathjs
rm -rf "$dest"
mkdir -p "$dest"
cp "$src/lib/browser/math.js.LICENSE.txt" "$src/LICENSE" "$src/NOTICE" "$dest/"
# without its source-map comment: a page never asks for a file that is not there
sed '/^\/\/# sourceMappingURL=/d' "$src/lib/browser/math.js" > "$dest/math.js"
version=$(node -p "require('./$src/package.json').version")
printf '{"name": "mathjs", "version": "%s", "license": "Apache-2.0", "note": "the browser bundle of math.js, vendored by scripts/vendor-mathjs.sh"}\n' "$version" > "$dest/package.json"
echo "vendor-mathjs: math.js $version in $dest ($(du -sh "$dest" | cut -f1))" >&2
