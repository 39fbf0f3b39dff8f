#!/usr/bin/env bash
# Lints the API reference as the code builds it (no server) with Spectral: spectral:oas and the
# OWASP API Security ruleset, the rules off or narrowed in .spectral.yaml beside this file. Any
# error or warning fails. Spectral is installed here (npm ci) the first time.
#
#   tools/lint/openapi/lint.sh      (scripts/test runs it as one check)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

if [[ ! -x $here/node_modules/.bin/spectral ]]; then
  echo "lint: installing Spectral (npm ci --prefix tools/lint/openapi)"
  # No install scripts: Spectral needs none (one of its dependencies would phone home).
  npm ci --prefix "$here" --no-audit --no-fund --ignore-scripts
fi

# .spectral.yaml names this path in its overrides.
out="$root/.local/lint/openapi.json"
mkdir -p "$(dirname "$out")"
deno run --allow-env --allow-read --allow-write="$out" "$root/tools/openapi_document.ts" "$out"
cd "$here"
node_modules/.bin/spectral lint --ruleset .spectral.yaml --fail-severity warn \
  ../../../.local/lint/openapi.json
