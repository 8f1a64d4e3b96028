#!/usr/bin/env bash
# Deploys released image digests to the recette cluster. Before the kubeconfig is used, each
# digest must be in this project's registry and owner and carry the release workflow's cosign
# signature and SBOM attestation (scripts/ci/verify-images.sh). Then a COPY of the kustomize
# tree gets `kustomize edit set image NAME=REPO@sha256:...` (NAME: the base's image name,
# contract releaseRepository/name; the overlay in Git is never edited here), an image pull
# secret when the GHCR package is private, then `kubectl apply -k`, the rollout
# wait, a check that the Deployments run exactly those digests, the purge of the generated
# ConfigMaps and Secrets that no revision uses any more (scripts/prune-config.sh), and the e2e
# smoke checks through a port-forward (the recette NodePort is not reachable from a CI runner).
#
# Usage: scripts/deploy-recette.sh [--render-only] API_REF FRONT_REF
#   *_REF                 REGISTRY/OWNER/datapress-{api,front}@sha256:<64 hex>
#   --render-only         print the manifests that would be applied, touch no cluster and no
#                         registry (the signatures are not verified)
# Environment:
#   GITHUB_REPOSITORY_OWNER, REGISTRY (default ghcr.io)   the only registry and owner accepted
#   GITHUB_REPOSITORY, GITHUB_SERVER_URL                  the release identity (verify-images.sh)
#   RECETTE_KUBECONFIG    the recette kubeconfig (content). Absent: the deploy fails, unless
#                         DEPLOY_ALLOW_SKIP=true (a manual run that asks for it): a notice, exit 0.
#   GHCR_PULL_USER, GHCR_PULL_TOKEN   optional: pull credentials for a private package, written
#                         for the release registry only (never the ref's), never printed
#   DEPLOY_SMOKE_BROWSER  1 (default) also runs the browser e2e against the deployed front
#   DEPLOY_VERIFY_KEY     offline tests only (tests/e2e/release-chain.sh): verify with this local
#                         cosign public key instead of the release identity; verify-images.sh
#                         refuses it on GitHub Actions
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/ci/common.sh"

NS=datapress-recette
render_only=false
if [[ ${1:-} == --render-only ]]; then render_only=true; shift; fi
(($# == 2)) || die "usage: $0 [--render-only] API_REF FRONT_REF"
declare -A refs=([api]=$1 [front]=$2)

# Only a digest of one of the contract's images, in this project's registry and owner, is
# deployable: never a tag, another name, registry or owner. No network yet.
for key in "${IMAGE_KEYS[@]}"; do check_release_digest "${refs[$key]}" "$key"; done
registry=$(release_registry)

if ! $render_only && [[ -z ${RECETTE_KUBECONFIG:-} ]]; then
  [[ ${DEPLOY_ALLOW_SKIP:-false} == true ]] ||
    die "no RECETTE_KUBECONFIG: the secret of the GitHub environment 'recette' is not set or did not reach this job; nothing was deployed (see docs/ci-cd.md)"
  gh_notice "Recette deployment skipped" \
    "asked for (allow-skip) and RECETTE_KUBECONFIG is not set; nothing was deployed (see docs/ci-cd.md)"
  exit 0
fi

if ! $render_only; then
  # Signature and SBOM attestation of the release workflow, before the kubeconfig is used.
  verify_with=()
  if [[ -n ${DEPLOY_VERIFY_KEY:-} ]]; then verify_with=(--key "$DEPLOY_VERIFY_KEY"); fi
  "$DP_ROOT/scripts/ci/verify-images.sh" "${verify_with[@]}" "${refs[api]}" "${refs[front]}"
fi

work=$(mktemp -d)
pf_pid=
cleanup() {
  if [[ -n $pf_pid ]]; then kill "$pf_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp -r "$DP_ROOT/kustomize" "$work/"
overlay="$work/kustomize/overlays/recette"
kustomize=$(go_tool sigs.k8s.io/kustomize/kustomize/v5 v5.8.2 kustomize)
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
py=$(ci_python)

(cd "$overlay" && "$kustomize" edit set image \
  "$(release_name api)=${refs[api]}" "$(release_name front)=${refs[front]}")

if [[ -n ${GHCR_PULL_TOKEN:-} ]]; then
  # For the release registry (both refs were checked to be in it), written inside the temporary
  # copy only (mode 600), removed on exit.
  registry_auth_json "$registry" "$overlay/.pull-secret.json"
  (cd "$overlay" &&
    "$kustomize" edit add secret ghcr-pull --type kubernetes.io/dockerconfigjson \
      --from-file=.dockerconfigjson=.pull-secret.json &&
    "$kustomize" edit add patch --kind Deployment \
      --patch '[{"op":"add","path":"/spec/template/spec/imagePullSecrets","value":[{"name":"ghcr-pull"}]}]')
  log "image pull secret ghcr-pull added for $registry"
fi

# What will be applied must run exactly the two digests, in the recette namespace.
k kustomize "$overlay" >"$work/recette.yaml"
"$py" - "$work/recette.yaml" "$NS" "${refs[api]}" "${refs[front]}" <<'PY' || die "the rendered overlay does not deploy the requested digests"
import sys, yaml
path, ns, *want = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
deployments = [d for d in docs if d["kind"] == "Deployment"]
images = sorted(c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"])
assert images == sorted(want), f"images {images} != {sorted(want)}"
assert all(d["metadata"].get("namespace") == ns for d in deployments), "a Deployment outside " + ns
PY
if $render_only; then
  # Never print credentials, even rendered; a pull secret shows only the registries it is for.
  "$py" -c 'import base64, json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] != "Secret": continue
    data = d.get("data", {})
    d["data"] = {k: "<redacted>" for k in data}
    if d.get("type") == "kubernetes.io/dockerconfigjson":
        auths = json.loads(base64.b64decode(data[".dockerconfigjson"]))["auths"]
        d["data"][".dockerconfigjson"] = "<redacted> (auths: " + " ".join(sorted(auths)) + ")"
print(yaml.safe_dump_all(docs, sort_keys=False), end="")' "$work/recette.yaml"
  exit 0
fi

(umask 077 && printf '%s\n' "$RECETTE_KUBECONFIG" >"$work/kubeconfig")
export KUBECONFIG="$work/kubeconfig"
k version >/dev/null || die "the recette cluster does not answer with the given kubeconfig"

# The namespace, its quota and its LimitRange are the platform part (kustomize/platform/recette),
# applied once by a cluster administrator; this deploy needs only the namespace's admin role.
k get namespace "$NS" >/dev/null ||
  die "namespace $NS not found: a cluster administrator applies kustomize/platform/recette first (docs/exploitation.md, section 4)"
log "kubectl apply -k (copy of kustomize/overlays/recette with the released digests)"
k apply -k "$overlay"
for d in datapress-api datapress-front; do
  k -n "$NS" rollout status "deployment/$d" --timeout=300s
done
for key in "${IMAGE_KEYS[@]}"; do
  running=$(k -n "$NS" get deployment "$(contract_name "$key")" -o jsonpath='{.spec.template.spec.containers[0].image}')
  [[ $running == "${refs[$key]}" ]] || die "deployment $(contract_name "$key") runs $running, not ${refs[$key]}"
done
log "recette runs ${refs[api]} and ${refs[front]}"
# Only now, the rollout done: a failed deploy keeps every object of the version before it.
"$DP_ROOT/scripts/prune-config.sh" "$NS"

# Smoke: the e2e's checks of what recette serves, through the front's Service.
port=$(free_port)
svc_port=$(k -n "$NS" get service datapress-front -o jsonpath='{.spec.ports[0].port}')
k -n "$NS" port-forward service/datapress-front "$port:$svc_port" --address 127.0.0.1 >"$work/port-forward.log" 2>&1 &
pf_pid=$!
base="http://127.0.0.1:$port"
wait_http "$base/healthz" 30 || die "the front does not answer through port-forward: $(cat "$work/port-forward.log")"
python3 - "$base" <<'PY' || die "recette smoke checks failed"
import json, sys, urllib.request
base = sys.argv[1]
get = lambda p: urllib.request.urlopen(base + p, timeout=5)
assert json.load(get("/api/health")) == {"status": "ok"}
info = json.load(get("/api/info"))
assert info.get("env") == "recette" and info.get("db_password") == "set", info
root = json.load(get("/api/"))
assert root.get("service") == "api" and root.get("env") == "recette", root
assert "DataPress" in get("/").read().decode()
print(f"ok   recette serves version {root.get('version')} (revision {root.get('revision')}), env=recette, db_password=set")
PY
if [[ ${DEPLOY_SMOKE_BROWSER:-1} == 1 ]]; then
  "$DP_ROOT/tests/e2e/front.e2e.sh" --base-url "$base" --no-api-control
fi
{
  echo "### Recette deployed"
  for key in "${IMAGE_KEYS[@]}"; do echo "- $key: \`${refs[$key]}\`"; done
} | gh_summary
