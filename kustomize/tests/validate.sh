#!/usr/bin/env bash
# Suite `manifests`: renders base, dev and recette with the project's kubectl, validates
# every object against the strict schemas of K8S_VERSION, checks them against the repo
# (kustomize/tests/test_manifests.py, with cluster_rules.py: what the API server, controllers
# and kubelet would refuse or get wrong, and each such breakage applied in memory), judges pod
# templates with the upstream Pod Security Admission library, and runs kube-score and
# checkov's Kubernetes policies. All offline.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

CHECKOV_VERSION=3.3.30
KUBE_SCORE_VERSION=v1.20.0
K8S_VER=$(k8s_version)
# The schema wheel follows K8S_VERSION's minor (it ships one schema set per minor).
SCHEMAS_VERSION="$(cut -d. -f1,2 <<<"$K8S_VER").0"

KUBECTL="$DP_ROOT/hack/tools/kubectl"
[[ -x $KUBECTL ]] || die "the project's kubectl wrapper is missing: $KUBECTL"
client=$("$KUBECTL" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
[[ $client == "v$K8S_VER" ]] || die "hack/tools/kubectl is $client, K8S_VERSION says v$K8S_VER"

out="$DP_BUILD/manifests"
rm -rf "$out" && mkdir -p "$out"
log "kubectl kustomize kustomize/base ($client)"
"$KUBECTL" kustomize "$DP_ROOT/kustomize/base" >"$out/base.yaml"
# Each environment as the cluster gets it: its platform part, then its application; each
# part apart too (who may apply which is checked on them).
for env in dev recette; do
  for part in platform overlays; do
    log "kubectl kustomize kustomize/$part/$env ($client)"
    "$KUBECTL" kustomize "$DP_ROOT/kustomize/$part/$env" >"$out/$env-$part.yaml"
  done
  { cat "$out/$env-platform.yaml"; echo "---"; cat "$out/$env-overlays.yaml"; } >"$out/$env.yaml"
done
# Recette on the project's clusters (no registry): the same application with the local images.
log "kubectl kustomize hack/cluster/recette ($client)"
"$KUBECTL" kustomize "$DP_ROOT/hack/cluster/recette" >"$out/recette-local.yaml"

venv=$(py_venv manifests "kubernetes-validate==$SCHEMAS_VERSION" "PyYAML==6.0.2")
log "strict schemas ($K8S_VER) and repository assertions"
MANIFESTS_DIR="$out" KUBECTL="$KUBECTL" \
  "$venv/bin/python" "$DP_ROOT/kustomize/tests/test_manifests.py"

# What recette's pods reserve and may use, read from the render (the deck's cost slide:
# make docs-assets copies it to docs/assets/recette-sizing.json).
"$venv/bin/python" - "$out/recette.yaml" >"$out/recette-sizing.json" <<'PY'
import json, sys, yaml
UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
def mib(q):
    num, unit = q[:-2], q[-2:]
    assert unit in UNITS and num.isdigit(), f"memory quantity {q!r} not in Ki/Mi/Gi"
    return int(num) * UNITS[unit]
out = {}
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        (c,) = d["spec"]["template"]["spec"]["containers"]
        r = c["resources"]
        out[d["metadata"]["name"]] = {"replicas": d["spec"]["replicas"],
                                      "requests_memory_mib": mib(r["requests"]["memory"]),
                                      "limits_memory_mib": mib(r["limits"]["memory"])}
print(json.dumps({"deployments": out}, indent=2))
PY

# The upstream Pod Security Admission library, at K8S_VERSION, judges every pod template
# as the API server will: the Python checks above are not the only word on "restricted".
psa_dir="$DP_ROOT/kustomize/tests/psa"
psa_want="k8s.io/pod-security-admission v0.${K8S_VER#*.}"
grep -q "^	$psa_want\$" "$psa_dir/go.mod" || die "kustomize/tests/psa/go.mod must require $psa_want (K8S_VERSION)"
psa_key=$(cat "$psa_dir/go.mod" "$psa_dir/go.sum" "$psa_dir"/*.go | sha256sum | cut -c1-12)
psa="$DP_CACHE/go-tools/psa-check-$psa_key/psa-check"
ensure_go
if [[ ! -x $psa ]]; then
  log "building psa-check (k8s.io/pod-security-admission v0.${K8S_VER#*.}) from the Go module proxy"
  (cd "$psa_dir" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -o "$psa.tmp" .) && mv "$psa.tmp" "$psa"
fi
log "Pod Security Admission (restricted) on the rendered overlays"
"$psa" "$out/dev.yaml" "$out/recette.yaml"

# kube-score, built from the Go module proxy and cached by version; the findings it may report
# are in kube-score.accepted, each with its reason.
kube_score=$(go_tool github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION" kube-score)
log "kube-score $KUBE_SCORE_VERSION on the rendered overlays"
python3 "$DP_ROOT/kustomize/tests/kube_score.py" "$kube_score" "v$(cut -d. -f1,2 <<<"$K8S_VER")" \
  "$DP_ROOT/kustomize/tests/kube-score.accepted" dev="$out/dev.yaml" recette="$out/recette.yaml"

# Accepted exceptions live next to what they excuse, as checkov.io/skipN annotations with
# their reason; anything else checkov finds fails the suite.
checkov=$(py_venv checkov "checkov==$CHECKOV_VERSION")
log "checkov $CHECKOV_VERSION (Kubernetes checks) on the rendered overlays"
# Exits 1 on findings (the report below decides), anything else is a crash.
checkov_rc=0
(cd "$out" && "$checkov/bin/checkov" --framework kubernetes --skip-download \
  -f dev.yaml -f recette.yaml -o json >checkov.json) || checkov_rc=$?
((checkov_rc <= 1)) || die "checkov failed (exit $checkov_rc)"
"$checkov/bin/python" - "$out/checkov.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
reports = [r for r in (data if isinstance(data, list) else [data]) if r.get("check_type") == "kubernetes"]
assert reports, "checkov produced no Kubernetes report"
failed = [c for r in reports for c in r["results"].get("failed_checks", [])]
for c in failed:
    print(f"FAILED {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}")
for c in (c for r in reports for c in r["results"].get("skipped_checks", [])):
    print(f"accepted {c['check_id']} {c['resource']}: {c['check_result'].get('suppress_comment')}")
passed, skipped = (sum(r["summary"][k] for r in reports) for k in ("passed", "skipped"))
print(f"checkov: {passed} passed, {len(failed)} failed, {skipped} accepted with a reason")
sys.exit(1 if failed or passed < 100 else 0)
EOF
log "manifests OK: base, dev and recette render, validate and pass policy"
