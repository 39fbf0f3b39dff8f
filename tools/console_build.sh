#!/usr/bin/env bash
# Builds the console (console/) for a local profile into .local/console/<profile>/, configured
# with that profile's URLs: tools/console_build.sh <dev|test>. Called by scripts/dev and
# scripts/test. Installs the console's npm packages with `npm ci` (its own package-lock.json)
# when they are missing or older than the lock file, writes the API's OpenAPI document to
# .local/openapi.json (the console's API types are generated from it, so a changed API fails
# the console's type check here), then runs `npm run build` (types, tsc, vite build).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile=${1:?usage: tools/console_build.sh <dev|test>}
env_file=".local/$profile.env"
setting() { sed -n "s/^$1=//p" "$env_file" | tail -n 1; }

supabase_url=$(setting SUPABASE_URL)
if [[ -z $supabase_url ]]; then
  echo "console: $env_file has no SUPABASE_URL (run the stack first)" >&2
  exit 1
fi

if [[ ! -f console/node_modules/.package-lock.json ||
  console/package-lock.json -nt console/node_modules/.package-lock.json ]]; then
  echo "console: installing its packages (npm ci in console/)"
  (cd console && npm ci --no-audit --no-fund --loglevel=error)
fi

deno run --allow-read --allow-env --allow-write=.local tools/openapi_export.ts .local/openapi.json
echo "console: building for $profile into .local/console/$profile"
(
  cd console
  TORVUS_CONSOLE_SUPABASE_URL="$supabase_url" \
    TORVUS_CONSOLE_PUBLISHABLE_KEY="${TORVUS_CONSOLE_PUBLISHABLE_KEY:-sb_publishable_local_stand_in}" \
    TORVUS_CONSOLE_API_URL="$supabase_url" \
    TORVUS_CONSOLE_OUT="../.local/console/$profile" \
    npm run --silent build
)
