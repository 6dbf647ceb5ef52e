#!/usr/bin/env bash
# Renders both Kubernetes overlays so a broken manifest fails CI, then runs
# the Go checks of the render and of the NATS config (cmd/odavl-sync
# deploy_test.go). Uses kustomize, or kubectl kustomize, or installs
# kustomize v5.7.1 into .tools/bin from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"

if command -v kustomize >/dev/null; then
  render() { kustomize build "$1"; }
elif command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  render() { kubectl kustomize "$1"; }
else
  echo "installing kustomize v5.7.1 into .tools/bin"
  GOBIN="$PWD/.tools/bin" go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
  render() { kustomize build "$1"; }
fi

for overlay in dev prod; do
  out=$(render "deploy/k8s/overlays/$overlay")
  echo "deploy/k8s/overlays/$overlay: $(grep -c '^kind:' <<<"$out") objects"
done
(cd cmd/odavl-sync && go test -count=1 -run 'TestKustomizeOverlays|TestNATSClusterConfig|TestNATSPermissions' .)
