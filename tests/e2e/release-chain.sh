#!/usr/bin/env bash
# The release chain of .github/workflows/release.yml, run here end to end with the same scripts:
# publish-images.sh pushes both images of this commit to a real registry (distribution, on
# 127.0.0.1) and reads their digests back, sign-images.sh makes their SBOMs and signs and
# attests them with a local cosign key (keyless signing exists only on GitHub), then
# deploy-recette.sh verifies both digests and deploys recette from the registry by digest: the
# node must pull them (the registry's log must show it). Before that, a digest that was never
# signed (the API image with one label changed) must be refused before anything is applied.
# Last, pin-recette.sh writes the digests into a copy of the recette overlay, as the release
# proposes them to Git: kubectl diff of that overlay against the cluster must be empty.
# Runs on the project's test cluster (its containerd runs on this host and reaches 127.0.0.1),
# after tests/e2e/k8s.sh has deployed recette. Usage: tests/e2e/release-chain.sh
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/../../scripts/ci/common.sh"
# shellcheck source=hack/cluster/env.sh
. "$DP_ROOT/hack/cluster/env.sh"

NS=datapress-recette
OWNER=datapress # the contract's source repository owner
cluster_ready || die "the project's test cluster is not running (make cluster-up)"
kc -n "$NS" get deployment datapress-api datapress-front >/dev/null ||
  die "recette is not deployed on the test cluster (tests/e2e/k8s.sh first)"
ensure_docker
for key in "${IMAGE_KEYS[@]}"; do
  docker image inspect "$(local_ref "$key")" >/dev/null || die "$(local_ref "$key") is not built (make images)"
done

work=$(mktemp -d)
registry_pid=
artifacts="$DP_BUILD/e2e/release-chain"
cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; fi
  mkdir -p "$artifacts" && cp "$work/registry.log" "$artifacts/" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A real registry (the distribution project's), on a fresh port: nothing of it is on the node.
port=$(free_port)
address=127.0.0.1:$port
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  accesslog:
    disabled: false
  level: info
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $address
EOF
registry_bin=$(go_tool github.com/distribution/distribution/v3/cmd/registry v3.1.2 registry)
"$registry_bin" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
wait_http "http://$address/v2/" 10 || die "the local registry did not start: $(tail -n 5 "$work/registry.log")"
log "registry on $address"

cosign_bin=$(go_tool github.com/sigstore/cosign/v3/cmd/cosign v3.1.3 cosign)
PATH="$(dirname "$cosign_bin"):$PATH"
export PATH COSIGN_PASSWORD="" TUF_ROOT="$work/tuf"
(cd "$work" && cosign generate-key-pair >/dev/null 2>&1) || die "cosign generate-key-pair failed"

# What release.yml's jobs get from GitHub, for this registry (it asks for no credentials).
export REGISTRY=$address GITHUB_REPOSITORY_OWNER=$OWNER GITHUB_ACTOR=local GHCR_TOKEN=unused-by-this-registry
unset GITHUB_ACTIONS GITHUB_REF_TYPE GITHUB_REF_NAME GITHUB_OUTPUT GITHUB_STEP_SUMMARY GHCR_PULL_TOKEN GHCR_PULL_USER
export DOCKER_CONFIG=$work/docker # docker login of the release scripts, kept in this run

checks_started
"$DP_ROOT/scripts/ci/publish-images.sh"
"$DP_ROOT/scripts/ci/sign-images.sh" --key "$work/cosign.key"
ref() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]]["ref"])' "$DP_BUILD/release/digests.json" "$1"; }
api_ref=$(ref api) front_ref=$(ref front)

# The deploy job's kubeconfig holds the namespace's admin role only: the cluster administrator's,
# impersonating the ServiceAccount tests/e2e/k8s.sh binds to that role.
"$(ci_python)" - "$KUBECONFIG_ADMIN" "system:serviceaccount:$NS:e2e-deployer" >"$work/kubeconfig" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for user in config["users"]:
    user["user"]["as"] = sys.argv[2]
print(yaml.safe_dump(config), end="")
PY
chmod 600 "$work/kubeconfig"
deploy() { # deploy API_REF FRONT_REF: deploy-recette.sh as the deploy job runs it
  RECETTE_KUBECONFIG=$(cat "$work/kubeconfig") DEPLOY_VERIFY_KEY="$work/cosign.pub" \
    "$DP_ROOT/scripts/deploy-recette.sh" "$1" "$2"
}
state() { # what recette runs: each Deployment's generation and image
  kc -n "$NS" get deployment datapress-api datapress-front \
    -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.generation} {.spec.template.spec.containers[0].image}{"\n"}{end}'
}

# 1. A digest nobody signed, in the right registry and owner: refused before any apply.
crane=$(go_tool github.com/google/go-containerregistry/cmd/crane v0.22.1 crane)
repo=${api_ref%@*}
"$crane" mutate --label org.opencontainers.image.description=tampered "$api_ref" -t "$repo:tampered" >/dev/null
tampered=$repo@$("$crane" digest "$repo:tampered")
[[ $tampered != "$api_ref" ]] || die "the tampered image has the signed image's digest"
before=$(state)
rc=0
deploy "$tampered" "$front_ref" >"$work/refused.log" 2>&1 || rc=$?
((rc != 0)) || die "deploy-recette.sh deployed an unsigned digest ($tampered): $(tail -n 5 "$work/refused.log")"
grep -q "$tampered: signature verification failed" "$work/refused.log" ||
  die "deploy-recette.sh failed, but not on the signature of $tampered: $(tail -n 5 "$work/refused.log")"
[[ $(state) == "$before" ]] || die "recette changed although the deploy was refused: before: $before, after: $(state)"
printf 'ok   unsigned digest refused before any apply: %s\n' "$tampered"

# 2. The signed digests: verified, deployed, pulled by the node from the registry.
# On a cluster left running, an earlier run may have left these digests on the node (under
# another registry port): removed, so that the node has to fetch them from this registry.
mapfile -t held < <(ctr_k8s images ls | awk -v a="${api_ref#*@}" -v f="${front_ref#*@}" '$3 == a || $3 == f {print $1}')
if ((${#held[@]})); then
  ctr_k8s images rm "${held[@]}" >/dev/null
  log "removed from the node what an earlier run pulled: ${held[*]}"
fi
deploy "$api_ref" "$front_ref"
for ref in "$api_ref" "$front_ref"; do
  path=${ref#"$address"/}
  grep -q "\"GET /v2/${path%@*}/manifests/${ref#*@} HTTP/1.1\" 200 .*containerd" "$work/registry.log" ||
    die "the node did not pull $ref from the registry (its log has no such GET by containerd)"
done
kc -n "$NS" get pods -l app.kubernetes.io/part-of=datapress \
  -o jsonpath='{range .items[*]}{.status.containerStatuses[0].imageID}{"\n"}{end}' >"$work/image-ids"
for ref in "$api_ref" "$front_ref"; do
  grep -q "${ref#*@}" "$work/image-ids" || die "no recette pod runs ${ref#*@}: $(cat "$work/image-ids")"
done
printf 'ok   recette deployed from %s by digest, signature and SBOM attestation verified, pulled by the node:\n     %s\n     %s\n' \
  "$address" "$api_ref" "$front_ref"

# 3. What the release then proposes to Git (job pin-recette of release.yml): the recette overlay
# pinned to these digests is exactly what recette now runs.
cp -r "$DP_ROOT/kustomize" "$work/pinned"
"$DP_ROOT/scripts/ci/pin-recette.sh" --overlay "$work/pinned/overlays/recette" "$api_ref" "$front_ref"
rc=0
kc diff -k "$work/pinned/overlays/recette" >"$work/pinned.diff" 2>&1 || rc=$?
((rc == 0)) || die "the pinned overlay is not what recette runs (kubectl diff exit $rc): $(head -n 40 "$work/pinned.diff")"
printf 'ok   the recette overlay pinned to these digests (what the release proposes to Git) is what runs: kubectl diff empty\n'
