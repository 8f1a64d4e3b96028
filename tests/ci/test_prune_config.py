"""scripts/prune-config.sh without a cluster: a fake kubectl serves a namespace's objects and
records the deletions. Only unused, labelled, hashed ConfigMaps and Secrets may go; the test
on the cluster (tests/e2e/k8s_disruptions.sh, case config-prune) proves the rest."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRUNE = ROOT / "scripts" / "prune-config.sh"
LABELS = {"app.kubernetes.io/part-of": "datapress"}

FAKE_KUBECTL = """#!/usr/bin/env python3
import json, os, sys
d = os.environ["FAKE_DIR"]
args = sys.argv[1:]
assert args[:2] == ["-n", "ns"], args
verb, what = args[2], args[3]
if verb == "get" and what == "configmaps,secrets":
    assert "app.kubernetes.io/part-of=datapress" in args, args
    print(open(os.path.join(d, "candidates.json")).read())
elif verb == "get" and what == "deployments,replicasets,pods,serviceaccounts":
    print(open(os.path.join(d, "users.json")).read())
elif verb == "delete":
    with open(os.path.join(d, "deleted"), "a") as f:
        for name in args[4:]:
            if not name.startswith("--"):
                f.write(what + "/" + name + "\\n")
else:
    sys.exit("unexpected call: " + " ".join(args))
"""


def obj(kind, name, labels=LABELS, **rest):
    return {"kind": kind, "metadata": {"name": name, "labels": dict(labels or {})}, **rest}


def template(spec):
    return {"template": {"spec": spec}}


def run(tmp_path, candidates, users, *args):
    (tmp_path / "candidates.json").write_text(json.dumps({"items": candidates}))
    (tmp_path / "users.json").write_text(json.dumps({"items": users}))
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    env = {**os.environ, "KUBECTL": str(kubectl), "FAKE_DIR": str(tmp_path)}
    result = subprocess.run([str(PRUNE), *args, "ns"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    deleted = tmp_path / "deleted"
    return result.stdout, sorted(deleted.read_text().split()) if deleted.exists() else []


def test_keeps_what_any_revision_references_and_deletes_the_rest(tmp_path):
    candidates = [
        obj("ConfigMap", "datapress-config-tddfmmk69h"),  # current, the Deployment
        obj("ConfigMap", "datapress-config-2k8h5c6m9t"),  # an old ReplicaSet (rollout undo)
        obj("ConfigMap", "datapress-config-bcdfghkm24"),  # nobody
        obj("ConfigMap", "datapress-front-upstream-gd52596b9g"),  # projected source of a Pod
        obj("ConfigMap", "datapress-extra-5bd9cf8g4h"),  # env valueFrom of an old ReplicaSet
        obj("Secret", "datapress-secret-kk64h27c9k"),  # volume of the Deployment
        obj("Secret", "datapress-secret-7f7c6b5d4m"),  # nobody
        obj("Secret", "datapress-token-9h8g7f6d5c"),  # envFrom secretRef of an old ReplicaSet
        obj("Secret", "ghcr-pull-m2t4f6h8k9"),  # imagePullSecrets of the Deployment
        obj("Secret", "ghcr-pull-c5d6f7g8h9"),  # a ServiceAccount's pull secret
        obj("Secret", "ghcr-pull-22222bbbbb"),  # old pull secret, nobody
    ]
    users = [
        obj("Deployment", "datapress-api", spec=template({
            "imagePullSecrets": [{"name": "ghcr-pull-m2t4f6h8k9"}],
            "containers": [{"name": "api", "envFrom": [{"configMapRef": {"name": "datapress-config-tddfmmk69h"}}]}],
            "volumes": [{"name": "secret", "secret": {"secretName": "datapress-secret-kk64h27c9k"}}],
        })),
        obj("ReplicaSet", "datapress-api-old", spec=template({
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "datapress-token-9h8g7f6d5c"}}]}],
            "containers": [{"name": "api",
                            "envFrom": [{"configMapRef": {"name": "datapress-config-2k8h5c6m9t"}}],
                            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "datapress-extra-5bd9cf8g4h", "key": "x"}}}]}],
        })),
        obj("Pod", "datapress-front-abc", spec={
            "containers": [{"name": "front"}],
            "volumes": [{"name": "up", "projected": {"sources": [{"configMap": {"name": "datapress-front-upstream-gd52596b9g"}}]}}],
        }),
        obj("ServiceAccount", "datapress-api", imagePullSecrets=[{"name": "ghcr-pull-c5d6f7g8h9"}]),
    ]
    out, deleted = run(tmp_path, candidates, users)
    assert deleted == ["configmap/datapress-config-bcdfghkm24", "secret/datapress-secret-7f7c6b5d4m", "secret/ghcr-pull-22222bbbbb"]
    lines = out.splitlines()
    assert len(lines) == len(candidates), out  # one line per candidate
    assert "delete configmap/datapress-config-bcdfghkm24" in lines
    assert any(line.startswith("keep   configmap/datapress-config-2k8h5c6m9t (used by replicaset/datapress-api-old") for line in lines), out


def test_never_touches_objects_it_did_not_generate(tmp_path):
    # Unlabelled (kube-root-ca.crt, a service-account token), or labelled without a hash suffix.
    candidates = [
        obj("ConfigMap", "kube-root-ca.crt", labels=None),
        obj("Secret", "default-token-abcde", labels=None),
        obj("ConfigMap", "other-app-config-bcdfghkm24", labels=None),
        obj("Secret", "datapress-handmade"),
        obj("ConfigMap", "datapress-config-TDDFMMK69H"),  # not kustomize's alphabet
    ]
    out, deleted = run(tmp_path, candidates, [])
    assert deleted == [] and out == ""


def test_dry_run_deletes_nothing(tmp_path):
    out, deleted = run(tmp_path, [obj("ConfigMap", "datapress-config-bcdfghkm24")], [], "--dry-run")
    assert deleted == [] and out.strip() == "delete configmap/datapress-config-bcdfghkm24"
