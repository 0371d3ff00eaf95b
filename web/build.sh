#!/usr/bin/env bash
# Build the medseg serve front end into src/medseg/web/static/ (committed, shipped as package data).
# Usage: cd web && npm ci && npm run build     (or: bash web/build.sh)
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci
OUT=../src/medseg/web/static
mkdir -p "$OUT"
node_modules/.bin/esbuild src/app.js --bundle --format=esm --minify --target=es2020 \
  --legal-comments=external --outfile="$OUT/app.js" --log-level=warning
cp src/index.html src/app.css "$OUT/"
# shipped gzipped (a quarter of the size); medseg serve sends it with Content-Encoding: gzip
gzip -9 -n -f "$OUT/app.js"
# the licences of every package bundled into app.js (niivue's BSD-2 and its dependencies)
rm -f "$OUT/app.js.LEGAL.txt"
{
  echo "Licences of the packages bundled into app.js (from web/package-lock.json)."
  npm ls --omit=dev --all --parseable | tail -n +2 | grep -v -e '/esbuild$' -e '@esbuild/' -e '@rollup/' | sort -u |
  while read -r dir; do
    name=$(node -p "require('$dir/package.json').name + '@' + require('$dir/package.json').version")
    lic=$(ls "$dir" | grep -i -m1 -E '^(licen[cs]e|copying)' || true)
    echo; echo "==== $name"
    if [ -n "$lic" ]; then cat "$dir/$lic"; else node -p "'license: ' + require('$dir/package.json').license"; fi
  done
} > "$OUT/LICENSES.txt"
ls -la "$OUT"
