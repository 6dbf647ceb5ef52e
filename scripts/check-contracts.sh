#!/usr/bin/env bash
# Checks the gateway's OpenAPI document with the tools its users run
# (`make contracts`, and so .ci/run):
#   1. writes the document /api/v1/openapi.json serves (services/ingest/cmd/openapi);
#   2. redocly lint: no error (the recommended rules, contracts/redocly.yaml);
#   3. openapi-typescript generates a client's types and tsc compiles
#      contracts/client.ts against them;
#   4. @asyncapi/parser validates the AsyncAPI document of the events
#      (/api/v1/asyncapi.json, written beside the OpenAPI one): no error.
# The npm tools are pinned in contracts/package-lock.json and installed with
# `npm ci` into contracts/node_modules (gitignored) when missing or stale,
# always under CI. Any failure stops the script with a message that names
# the step.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
C="$REPO/contracts"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

fail() { echo "check-contracts: FAILED: $*" >&2; exit 1; }
step() { echo "check-contracts: $*"; }

command -v npm >/dev/null || fail "npm is missing (Node 20+ and npm are needed: apt-get install -y nodejs npm)"
if [ -n "${CI:-}" ] || [ ! -f "$C/node_modules/.package-lock.json" ] || [ "$C/package-lock.json" -nt "$C/node_modules/.package-lock.json" ]; then
  step "npm ci (contracts/package-lock.json)"
  (cd "$C" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in contracts/"
fi

start=$(date +%s)
mkdir -p "$C/build"
rm -f "$C/build/openapi.json" "$C/build/openapi.d.ts" "$C/build/asyncapi.json"
step "writing the served documents to contracts/build/openapi.json and asyncapi.json"
(cd services/ingest && go run ./cmd/openapi -o "$C/build/openapi.json" -asyncapi "$C/build/asyncapi.json") || fail "building the OpenAPI and AsyncAPI documents"

cd "$C"
step "redocly lint"
if ! npx --no-install redocly lint --config redocly.yaml --format=stylish build/openapi.json >build/lint.txt 2>&1; then
  sed -n '/^validating/,$p' build/lint.txt
  fail "redocly lint reports errors in the OpenAPI document (above; contracts/build/openapi.json)"
fi
grep -E 'validated in|warnings?\.$|valid' build/lint.txt || true

step "openapi-typescript"
npx --no-install openapi-typescript build/openapi.json -o build/openapi.d.ts --default-non-nullable false 2>build/typescript.txt ||
  { cat build/typescript.txt; fail "openapi-typescript could not generate types from the OpenAPI document"; }

step "tsc --noEmit (contracts/client.ts against the generated types)"
npx --no-install tsc --noEmit -p . || fail "contracts/client.ts does not compile against the generated types (above)"

step "asyncapi lint (@asyncapi/parser)"
node asyncapi-lint.mjs build/asyncapi.json || fail "the AsyncAPI document has errors (above; contracts/build/asyncapi.json)"

step "ok in $(($(date +%s) - start))s"
