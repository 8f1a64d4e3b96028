"""The GitHub Actions workflows against the repository they run in.

Nothing here needs GitHub: it proves that what the workflows call exists, that they use the
repository's own image names and overlays, that every action is pinned to a recorded SHA,
that every job is fenced (permissions, timeout, concurrency), and that the recette deploy
script renders the released digests without touching a cluster.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOW_FILES = sorted((GITHUB / "workflows").glob("*.y*ml"))
WORKFLOWS = {p.name: yaml.safe_load(p.read_text()) for p in WORKFLOW_FILES}
CONTRACT = json.loads((ROOT / "images" / "contract.json").read_text())
IMAGE_NAMES = {image["name"] for image in CONTRACT["images"].values()}
SHA = re.compile(r"^[0-9a-f]{40}$")


def triggers(workflow):
    # PyYAML reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True)) or {}


def jobs():
    for name, workflow in WORKFLOWS.items():
        for job_id, job in workflow["jobs"].items():
            yield name, job_id, job


def steps():
    for name, job_id, job in jobs():
        for step in job.get("steps", []):
            yield name, job_id, step


def run_blocks():
    return [(name, job_id, step["run"]) for name, job_id, step in steps() if "run" in step]


def make_targets():
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+):", text, re.M))


def test_the_expected_workflows_exist():
    assert {"ci.yml", "release.yml", "deploy-recette.yml", "flake-update.yml"} <= set(WORKFLOWS)
    dependabot = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"] for u in dependabot["updates"]}
    assert {"github-actions", "cargo"} <= ecosystems


def test_ci_has_the_documented_jobs():
    ci = WORKFLOWS["ci.yml"]
    assert set(ci["jobs"]) == {"rust", "nix", "manifests", "e2e", "workflows"}
    assert {"pull_request", "push"} <= set(triggers(ci))
    assert ci["jobs"]["e2e"]["needs"] == "nix", "e2e runs the images the nix job built"


def test_every_make_target_called_exists():
    targets = make_targets()
    called = set()
    for _, _, run in run_blocks():
        for match in re.finditer(r"(?:^|[\s;&|(])make\s+((?:[A-Za-z0-9_-]+\s*)+)", run):
            called.update(match.group(1).split())
    assert called, "the workflows call no Make target"
    missing = called - targets
    assert not missing, f"Make targets called by workflows but absent from the Makefile: {missing}"


def test_every_script_called_exists_and_is_executable():
    pattern = re.compile(r"(?<![\w./-])(?:\./)?((?:scripts|tests|hack|images|bench|docs|nix|front)/[\w./-]+\.(?:sh|py))")
    called = {m.group(1) for _, _, run in run_blocks() for m in pattern.finditer(run)}
    assert called, "the workflows call no repository script"
    for path in sorted(called):
        file = ROOT / path
        assert file.is_file(), f"{path} is called by a workflow but does not exist"
        assert os.access(file, os.X_OK), f"{path} is not executable"


def test_every_script_the_ci_scripts_call_exists():
    scripts = [*sorted((ROOT / "scripts" / "ci").glob("*.sh")), ROOT / "scripts" / "deploy-recette.sh"]
    for script in scripts:
        for path in re.findall(r"\$DP_ROOT/((?:scripts|tests|hack)/[\w./-]+)", script.read_text()):
            assert (ROOT / path).is_file(), f"{script.name} calls {path}, which does not exist"


def test_run_steps_hold_no_logic():
    # The logic lives in Make targets and scripts that developers run too; a `run:` is one command.
    for name, job_id, run in run_blocks():
        lines = [line for line in run.strip().splitlines() if line.strip()]
        assert len(lines) == 1, f"{name}/{job_id}: a run step with {len(lines)} lines: {run!r}"
        assert not re.search(r"[;|`]|&&|\$\(|\b(if|for|while|case)\b", run), f"{name}/{job_id}: logic in YAML: {run!r}"
        assert "${{" not in run, f"{name}/{job_id}: an expression inside run (pass it through env): {run!r}"


def test_every_job_is_fenced():
    for name, workflow in WORKFLOWS.items():
        assert workflow.get("permissions") == {}, f"{name}: workflow-level permissions must be {{}}"
    for name, job_id, job in jobs():
        where = f"{name}/{job_id}"
        assert "permissions" in job, f"{where}: no permissions"
        assert job["permissions"] not in ("write-all", "read-all"), f"{where}: blanket permissions"
        assert "concurrency" in job, f"{where}: no concurrency group"
        if "uses" in job:
            # A reusable-workflow call cannot carry timeout-minutes: the called jobs do.
            called = ROOT / job["uses"].removeprefix("./")
            for callee_id, callee in yaml.safe_load(called.read_text())["jobs"].items():
                assert "timeout-minutes" in callee, f"{called.name}/{callee_id}: no timeout-minutes"
        else:
            assert isinstance(job.get("timeout-minutes"), int), f"{where}: no timeout-minutes"


def test_write_permissions_only_where_needed():
    allowed = {
        ("release.yml", "publish"): {"packages", "id-token"},
        ("flake-update.yml", "update"): {"contents", "pull-requests"},
        ("release.yml", "pin-recette"): {"contents", "pull-requests"},  # the pull request of the deployed digests
    }
    for name, job_id, job in jobs():
        writes = {scope for scope, level in (job.get("permissions") or {}).items() if level == "write"}
        assert writes <= allowed.get((name, job_id), set()), f"{name}/{job_id} writes {writes}"


def test_checkouts_do_not_persist_credentials():
    for name, job_id, step in steps():
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_id}"


def read_pins():
    rows = {}
    for line in (GITHUB / "action-pins.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and SHA.match(cells[2]):
            action, tag, sha, source = cells
            assert source, f"{action}: where the SHA was read is not recorded"
            rows[action] = (tag, sha)
    return rows


def test_every_action_is_pinned_by_a_recorded_sha():
    pins = read_pins()
    used = set()
    for path in WORKFLOW_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(\S+))?\s*$", line)
            if not match:
                continue
            ref, comment = match.groups()
            where = f"{path.name}:{number}"
            if ref.startswith("./"):
                assert (ROOT / ref).exists(), f"{where}: {ref} does not exist"
                continue
            action, _, sha = ref.partition("@")
            assert SHA.match(sha), f"{where}: {ref} is not pinned by a full commit SHA"
            assert comment, f"{where}: {ref} has no version comment"
            assert action in pins, f"{where}: {action} is not in .github/action-pins.md"
            assert pins[action] == (comment, sha), f"{where}: {action}@{sha} # {comment} != recorded {pins[action]}"
            used.add(action)
    assert used == set(pins), f"pins recorded but unused: {set(pins) - used}"


def test_image_names_are_the_contracts():
    # Registry references written in the workflows name the contract's images.
    text = "\n".join(p.read_text() for p in WORKFLOW_FILES)
    for name in re.findall(r"ghcr\.io/[\w.-]+/([\w.-]+)", text):
        assert name in IMAGE_NAMES, f"workflows name image {name}, the contract has {IMAGE_NAMES}"
    # The scripts derive every name from the contract instead of writing it.
    for script in [*sorted((ROOT / "scripts" / "ci").glob("*.sh")), ROOT / "scripts" / "deploy-recette.sh"]:
        for name in IMAGE_NAMES:
            assert f"{name}:" not in script.read_text(), f"{script.name} hard-codes {name}:TAG"


def test_overlays_are_the_repositorys():
    scripts = [*WORKFLOW_FILES, *sorted((ROOT / "scripts" / "ci").glob("*.sh")), ROOT / "scripts" / "deploy-recette.sh"]
    named = {m for p in scripts for m in re.findall(r"overlays/([\w-]+)", p.read_text())}
    assert named == {"recette"}, named
    overlay = ROOT / "kustomize" / "overlays" / "recette" / "kustomization.yaml"
    assert overlay.is_file()
    namespace = yaml.safe_load(overlay.read_text())["namespace"]
    deploy = (ROOT / "scripts" / "deploy-recette.sh").read_text()
    assert f"NS={namespace}\n" in deploy, "deploy-recette.sh must target the overlay's namespace"


def test_kind_follows_k8s_version_and_the_nodeport():
    text = "\n".join(p.read_text() for p in WORKFLOW_FILES)
    assert "kindest/node" not in text and not re.search(r"\b1\.3\d\.\d+\b", text), "a Kubernetes version hard-coded in a workflow"
    kind = (ROOT / "scripts" / "ci" / "kind.sh").read_text()
    assert "kindest/node:v$(k8s_version)" in kind
    config = yaml.safe_load((ROOT / "scripts" / "ci" / "kind-cluster.yaml").read_text())
    mapping = config["nodes"][0]["extraPortMappings"][0]
    service = yaml.safe_load((ROOT / "kustomize" / "base" / "front-service.yaml").read_text())
    node_ports = {p.get("nodePort") for p in service["spec"]["ports"]}
    assert mapping["containerPort"] == mapping["hostPort"] and mapping["hostPort"] in node_ports
    assert mapping["listenAddress"] == "127.0.0.1"


def test_ci_kind_has_three_nodes_and_the_local_failure_detection():
    # GitHub's e2e runs the drain and node-loss cases on the same shape of cluster as make test.
    config = yaml.safe_load((ROOT / "scripts" / "ci" / "kind-cluster.yaml").read_text())
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    local = (ROOT / "hack" / "kind" / "up.sh").read_text()
    patches = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    kubelet = next(p for p in patches if p["kind"] == "KubeletConfiguration")
    cluster = next(p for p in patches if p["kind"] == "ClusterConfiguration")
    lease, grace = kubelet["nodeLeaseDurationSeconds"], cluster["controllerManager"]["extraArgs"]["node-monitor-grace-period"]
    assert f"nodeLeaseDurationSeconds: {lease}\n" in local and f"node-monitor-grace-period: {grace}\n" in local
    e2e = WORKFLOWS["ci.yml"]["jobs"]["e2e"]
    assert e2e["env"]["E2E_CASES"].split() == ["default", "nodes"]


def test_release_hands_digests_to_recette():
    release = WORKFLOWS["release.yml"]
    on = triggers(release)
    assert on["push"]["branches"] == ["main"] and on["push"]["tags"] == ["v*"]
    deploy_call = release["jobs"]["deploy-recette"]
    assert deploy_call["needs"] == "publish"
    assert deploy_call["if"] == "github.ref == 'refs/heads/main'"
    assert deploy_call["uses"] == "./.github/workflows/deploy-recette.yml"
    # The kubeconfig is a secret of the environment the called job declares: it reaches that
    # job only through the caller's `secrets: inherit` (actions/runner#1490).
    assert deploy_call["secrets"] == "inherit"
    outputs = release["jobs"]["publish"]["outputs"]
    deploy = WORKFLOWS["deploy-recette.yml"]
    inputs = triggers(deploy)["workflow_call"]["inputs"]
    assert set(deploy_call["with"]) == set(inputs) == set(outputs) == {"api-ref", "front-ref"}
    job = deploy["jobs"]["deploy"]
    assert job["environment"]["name"] == "recette"
    assert job["concurrency"]["cancel-in-progress"] is False, "a deployment is never cancelled halfway"
    # Skipping without a kubeconfig: only a manual run that asks for it.
    assert triggers(deploy)["workflow_dispatch"]["inputs"]["allow-skip"]["default"] is False
    assert any(s.get("env", {}).get("DEPLOY_ALLOW_SKIP") == "${{ inputs.allow-skip == true }}" for s in job["steps"])


def test_flake_lock_is_updated_by_a_scheduled_pull_request():
    on = triggers(WORKFLOWS["flake-update.yml"])
    assert on["schedule"] and "workflow_dispatch" in on
    uses = [s["uses"] for _, _, s in steps() if "update-flake-lock" in s.get("uses", "")]
    assert uses, "no update-flake-lock step"


# --- scripts/deploy-recette.sh without a cluster

DEPLOY = ROOT / "scripts" / "deploy-recette.sh"
API = "ghcr.io/example/datapress-api@sha256:" + "a" * 64
FRONT = "ghcr.io/example/datapress-front@sha256:" + "b" * 64


def deploy(*args, **env):
    unset = ("RECETTE_KUBECONFIG", "GHCR_PULL_TOKEN", "GHCR_PULL_USER", "GITHUB_ACTIONS", "REGISTRY", "GITHUB_REPOSITORY_OWNER")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    env = {"GITHUB_REPOSITORY_OWNER": "Example", **env}  # lowercased: ghcr.io/example
    return subprocess.run([str(DEPLOY), *args], env={**clean, **env}, capture_output=True, text=True, timeout=1800)


def overlay_snapshot():
    return {p: p.read_bytes() for p in sorted((ROOT / "kustomize").rglob("*")) if p.is_file()}


def test_deploy_fails_without_the_secret():
    result = deploy(API, FRONT)
    assert result.returncode != 0
    assert "no RECETTE_KUBECONFIG" in result.stderr and "skipped" not in result.stdout


def test_deploy_skips_with_a_notice_only_when_asked():
    result = deploy(API, FRONT, DEPLOY_ALLOW_SKIP="true")
    assert result.returncode == 0, result.stderr
    assert "Recette deployment skipped" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "api,front",
    [
        ("ghcr.io/example/datapress-api:1.0.0", FRONT),  # a tag, not a digest
        (API.replace("datapress-api", "other-api"), FRONT),  # not a contract image
        (FRONT, API),  # swapped
        (API.replace("ghcr.io/", "registry.example/"), FRONT),  # another registry
        (API, FRONT.replace("/example/", "/other/")),  # another owner
        (API.replace("/example/", "/example/sub/"), FRONT),  # a path below the owner
    ],
)
def test_deploy_refuses_anything_but_contract_digests(api, front):
    result = deploy("--render-only", api, front)
    assert result.returncode != 0
    assert "is not an image digest of" in result.stderr


def test_deploy_refuses_a_foreign_digest_before_the_kubeconfig_and_any_network_call():
    token = "ghp_" + "y" * 36
    result = deploy(API.replace("ghcr.io/", "127.0.0.1:9/"), FRONT, RECETTE_KUBECONFIG="unused",
                    GHCR_PULL_USER="bot", GHCR_PULL_TOKEN=token)
    assert result.returncode != 0 and "is not an image digest of ghcr.io/example/datapress-api" in result.stderr
    assert token not in result.stdout + result.stderr
    assert "verified" not in result.stderr and "cosign" not in result.stderr


def test_deploy_verifies_the_digests_before_the_kubeconfig_is_used():
    # verify-images.sh (signature + SBOM attestation, keyless) runs before anything reads the
    # kubeconfig or renders the overlay, with the two checked digests as its arguments; its only
    # possible option is the local key of the offline release chain (DEPLOY_VERIFY_KEY).
    text = "\n".join(line for line in DEPLOY.read_text().splitlines() if not line.lstrip().startswith("#")) + "\n"
    call = '"$DP_ROOT/scripts/ci/verify-images.sh" "${verify_with[@]}" "${refs[api]}" "${refs[front]}"\n'
    assert text.count("verify-images.sh") == 1 and call in text, "deploy-recette.sh must call verify-images.sh REF REF"
    assert [line.strip() for line in text.splitlines() if "verify_with=" in line] == [
        "verify_with=()", 'if [[ -n ${DEPLOY_VERIFY_KEY:-} ]]; then verify_with=(--key "$DEPLOY_VERIFY_KEY"); fi']
    for later in ('"$RECETTE_KUBECONFIG" >', "KUBECONFIG=", "k apply", "k version", "kustomize\" edit"):
        assert text.index(call) < text.index(later), f"{later!r} comes before the verification"


def test_deploy_refuses_a_local_verification_key_on_github_actions(tmp_path):
    # The offline release chain verifies with a local key; on GitHub, only the release identity.
    key = tmp_path / "cosign.pub"
    key.write_text("not used")
    result = deploy(API, FRONT, RECETTE_KUBECONFIG="unused", DEPLOY_VERIFY_KEY=str(key), GITHUB_ACTIONS="true")
    assert result.returncode != 0
    assert "--key is for offline tests only" in result.stderr, result.stderr[-2000:]
    assert "kubectl apply" not in result.stderr


def rendered(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_deploy_renders_the_digests_on_a_copy_of_the_overlay():
    before = overlay_snapshot()
    docs = rendered(deploy("--render-only", API, FRONT))
    assert overlay_snapshot() == before, "the overlay in the repository was modified"
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    images = {name: d["spec"]["template"]["spec"]["containers"][0]["image"] for name, d in deployments.items()}
    assert images == {"datapress-api": API, "datapress-front": FRONT}
    assert {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]} == {"datapress-recette"}
    assert all("imagePullSecrets" not in d["spec"]["template"]["spec"] for d in deployments.values())


def test_deploy_adds_a_pull_secret_for_a_private_package():
    token = "ghp_" + "x" * 36
    result = deploy("--render-only", API, FRONT, GHCR_PULL_USER="bot", GHCR_PULL_TOKEN=token)
    docs = rendered(result)
    assert token not in result.stdout + result.stderr
    secrets = [d for d in docs if d["kind"] == "Secret" and d.get("type") == "kubernetes.io/dockerconfigjson"]
    assert len(secrets) == 1 and secrets[0]["data"] == {".dockerconfigjson": "<redacted> (auths: ghcr.io)"}
    name = secrets[0]["metadata"]["name"]
    for d in docs:
        if d["kind"] == "Deployment":
            assert d["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": name}]


def test_the_pull_secret_is_for_the_release_registry_only():
    # The registry comes from REGISTRY, the same as the refs' (checked), never from a ref alone.
    registry = "registry.example:5000"
    api, front = (ref.replace("ghcr.io/", registry + "/") for ref in (API, FRONT))
    docs = rendered(deploy("--render-only", api, front, REGISTRY=registry, GHCR_PULL_USER="bot", GHCR_PULL_TOKEN="t0ken"))
    (secret,) = [d for d in docs if d["kind"] == "Secret" and d.get("type") == "kubernetes.io/dockerconfigjson"]
    assert secret["data"] == {".dockerconfigjson": f"<redacted> (auths: {registry})"}
    refused = deploy("--render-only", api, front, GHCR_PULL_USER="bot", GHCR_PULL_TOKEN="t0ken")  # REGISTRY unset: ghcr.io
    assert refused.returncode != 0 and "is not an image digest of ghcr.io/" in refused.stderr


def test_the_deploy_job_installs_the_cosign_that_signs():
    def cosign(job):
        (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("sigstore/cosign-installer@")]
        return step["uses"], step["with"]["cosign-release"]

    signing = cosign(WORKFLOWS["release.yml"]["jobs"]["publish"])
    deploy_job = WORKFLOWS["deploy-recette.yml"]["jobs"]["deploy"]
    assert cosign(deploy_job) == signing
    names = [s.get("uses", s.get("name", "")) for s in deploy_job["steps"]]
    assert names.index(signing[0]) < next(i for i, s in enumerate(deploy_job["steps"]) if "deploy-recette.sh" in s.get("run", ""))
