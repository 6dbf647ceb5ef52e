#!/usr/bin/env bash
# Runs the build stage of deploy/Dockerfile the way Docker would, without
# Docker, for every image: copies exactly what its COPY instructions copy
# (minus .dockerignore) into an empty directory, sets its ARGs and ENV, and
# runs its RUN commands there (their --mount flags dropped: the module and
# build caches are this machine's, so a second run is quick). A file the
# build needs but the Dockerfile does not copy fails here as it would in
# `docker build`.
#
#   scripts/check-images.sh [service...]   (default: ingest jobs storage stats odavl-sync)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dockerfile=deploy/Dockerfile
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(ingest jobs storage stats odavl-sync)
version="ci-$(git rev-parse --short HEAD 2>/dev/null || echo local)"

# The build stage's instructions, one per line (continuations joined,
# comments dropped), up to the next FROM.
instructions() {
  awk '
    /^[[:space:]]*#/ { next }
    { line = line $0 }
    /\\$/ { sub(/\\$/, "", line); next }
    { if (line ~ /[^[:space:]]/) print line; line = "" }
  ' "$dockerfile" | awk '/^FROM / { n++; if (n > 1) exit; next } n == 1'
}

# The Go version of the image must be this machine's: otherwise this check
# proves nothing about the image.
want_go=$(sed -n 's/^ARG GO_VERSION=//p' "$dockerfile")
have_go=$(go env GOVERSION)
if [ "go$want_go" != "$have_go" ]; then
  echo "deploy/Dockerfile builds with Go $want_go, this machine has $have_go" >&2
  exit 1
fi

excludes=()
while IFS= read -r pat; do
  [ -n "$pat" ] && excludes+=(--exclude="${pat#\*\*/}")
done < <(grep -v '^#' .dockerignore)

build() {
  local service=$1 ctx workdir
  ctx=$(mktemp -d)
  trap 'chmod -R u+w "$ctx" 2>/dev/null; rm -rf "$ctx"' RETURN
  workdir=$ctx
  local wd=
  # Each image's build runs with only the Dockerfile's ARG and ENV values.
  local -A args=([SERVICE]=$service [VERSION]=$version [GO_VERSION]=$want_go)
  local -a envs=()
  while IFS= read -r ins; do
    local op=${ins%% *} rest=${ins#* }
    case $op in
      ARG)
        local name=${rest%%=*}
        if [ -z "${args[$name]+x}" ]; then
          if [[ $rest == *=* ]]; then args[$name]=${rest#*=}; else args[$name]=; fi
        fi ;;
      ENV) read -r -a kv <<<"$rest"; envs+=("${kv[@]}") ;;
      WORKDIR) wd=$rest; workdir=$ctx$rest; mkdir -p "$workdir" ;;
      COPY)
        # COPY src... dest, relative to the context (the repository root).
        local -a parts; read -r -a parts <<<"$rest"
        local dest=${parts[-1]} src
        unset 'parts[-1]'
        for src in "${parts[@]}"; do
          [ -e "$root/$src" ] || { echo "COPY $src: no such file in the build context" >&2; return 1; }
          if [ -d "$root/$src" ]; then
            mkdir -p "$workdir/$dest"
            tar -C "$root/$src" "${excludes[@]}" -cf - . | tar -C "$workdir/$dest" -xf -
          else
            mkdir -p "$workdir/$dest"
            cp "$root/$src" "$workdir/$dest"
          fi
        done ;;
      RUN)
        local cmd=$rest
        while [[ $cmd == --* ]]; do cmd=${cmd#* }; cmd=${cmd#"${cmd%%[![:space:]]*}"}; done
        # Absolute paths under WORKDIR live in the temporary directory.
        [ -z "$wd" ] || cmd=${cmd//$wd\//$ctx$wd/}
        local -a argenv=()
        local k
        for k in "${!args[@]}"; do argenv+=("$k=${args[$k]}"); done
        (cd "$workdir" && env "${argenv[@]}" "${envs[@]}" sh -c "$cmd") || {
          echo "$service: RUN failed: $cmd" >&2; return 1; } ;;
      *) ;;
    esac
  done < <(instructions)
  # What the final stage copies out of the build stage.
  local out
  out=$(sed -n 's/^COPY --from=build \([^ ]*\) .*/\1/p' "$dockerfile")
  [ -x "$ctx$out" ] || { echo "$service: the build made no $out" >&2; return 1; }
  echo "$service: built $(du -h "$ctx$out" | cut -f1), reports $("$ctx$out" --version)"
}

for s in "${services[@]}"; do
  start=$(date +%s)
  build "$s"
  echo "$s: $(( $(date +%s) - start ))s"
done
