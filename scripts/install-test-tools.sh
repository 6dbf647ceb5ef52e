#!/usr/bin/env bash
# Installs what the tests need under ./.tools (gitignored), each only when
# missing, so a second run takes well under a second:
#   - versitygw, an S3 gateway that checks SigV4 signatures (go install);
#   - Azurite, the Azure Storage emulator (npm, run with node);
#   - Chromium from Debian for the dashboard tests (only as root).
# Used by `make tools` (before `make test`) and so by .ci/run.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$REPO/.tools"
VERSITYGW_VERSION="v1.8.0"
AZURITE_VERSION="3.37.0"
mkdir -p "$TOOLS/bin"

say() { echo "install-test-tools: $*"; }

# versitygw (S3).
if [ -x "$TOOLS/bin/versitygw" ] || command -v versitygw >/dev/null 2>&1; then
  say "versitygw present"
else
  say "installing versitygw $VERSITYGW_VERSION (takes a couple of minutes)"
  GOBIN="$TOOLS/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi

# Azurite (Azure Blob), run by the tests as node .tools/azurite/node_modules/azurite/dist/src/blob/main.js.
AZ_MAIN="$TOOLS/azurite/node_modules/azurite/dist/src/blob/main.js"
if [ -f "$AZ_MAIN" ]; then
  say "azurite present"
else
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing node and npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  if ! command -v npm >/dev/null 2>&1; then
    say "npm is missing: cannot install azurite (the Azure tests skip locally and fail under CI)"
    if [ -n "${CI:-}" ]; then exit 1; fi
  else
    say "installing azurite $AZURITE_VERSION"
    mkdir -p "$TOOLS/azurite"
    npm install --prefix "$TOOLS/azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
  fi
fi

# Chromium (dashboard tests), from Debian, only as root.
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  say "chromium present"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
else
  say "chromium is missing and this is not root: install it with apt-get install -y chromium"
fi
