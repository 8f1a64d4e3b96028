#!/usr/bin/env bash
# The container engine that runs the kind nodes (docker or podman, as cluster-up-3 chose), with
# its environment: tests act on nodes through it. E.g. hack/kind/engine.sh exec datapress-worker
# crictl ps, hack/kind/engine.sh kill datapress-worker2, hack/kind/engine.sh start datapress-worker2.
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"
[[ -n $KIND_PROVIDER ]] || die "no kind cluster (make cluster-up-3)"
exec "$KIND_PROVIDER" "$@"
