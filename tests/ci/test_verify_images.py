"""scripts/ci/verify-images.sh against a real registry on 127.0.0.1 (crane's), offline.

Tiny images pushed with crane are signed and SBOM-attested with a local cosign key, without
Fulcio nor transparency log (a signing config with no service, an empty trusted root), and
verified with the script's test-only --key option. The release path (keyless: the release
workflow's certificate identity) can only succeed on GitHub; here it is shown to refuse these
key-signed digests, and deploy-recette.sh to stop on that refusal before using its kubeconfig.
"""

import io
import json
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest
from local_registry import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
VERIFY = ROOT / "scripts" / "ci" / "verify-images.sh"
DEPLOY = ROOT / "scripts" / "deploy-recette.sh"
CRANE = ("github.com/google/go-containerregistry/cmd/crane", "v0.22.1", "crane")  # as publish-images.sh
COSIGN = ("github.com/sigstore/cosign/v3/cmd/cosign", "v3.1.3", "cosign")
OWNER = "Example-Org"  # GITHUB_REPOSITORY_OWNER; lowercased in the registry
SBOM = {
    "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "test",
    "documentNamespace": "https://example.invalid/test", "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: test"]},
    "packages": [{"name": "hello", "SPDXID": "SPDXRef-Package-hello", "downloadLocation": "NOASSERTION"}],
}


def go_tool(pkg, version, binary):
    # scripts/lib.sh's go_tool: built once from the Go module proxy, cached by version outside the clone.
    result = subprocess.run(["bash", "-c", '. "$1/scripts/lib.sh"; go_tool "$2" "$3" "$4"', "_", str(ROOT), pkg, version, binary],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def run(*args, env=None, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)


class Registry:
    def __init__(self, crane, cosign, tmp):
        self.crane, self.cosign, self.tmp = crane, cosign, tmp
        self.log = tmp / "registry.log"
        self.address = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([crane, "registry", "serve", "--address", self.address],
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        wait_ready(self.address, self.proc)
        # Offline signing: a signing config with no service (no Fulcio, no Rekor, no TSA) and an
        # empty trusted root, so that cosign asks no TUF repository either.
        self.config = tmp / "signing-config.json"
        self.root = tmp / "trusted-root.json"
        self.sbom = tmp / "sbom.spdx.json"
        self.sbom.write_text(json.dumps(SBOM))
        for args in (["signing-config", "create", "--out", self.config], ["trusted-root", "create", "--out", self.root]):
            result = run(cosign, *args, env=self.env())
            assert result.returncode == 0, result.stderr
        self.keys = {}
        for name in ("release", "other"):
            (tmp / name).mkdir()
            result = subprocess.run([cosign, "generate-key-pair"], cwd=tmp / name, env=self.env(), capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            self.keys[name] = tmp / name / "cosign"
        self.count = 0

    def env(self):
        return {**os.environ, "COSIGN_PASSWORD": "", "TUF_ROOT": str(self.tmp / "tuf")}

    def requests(self):
        return len(self.log.read_text().splitlines())

    def push(self, name, owner=OWNER.lower()):
        """A new one-file image in OWNER/NAME; its digest reference."""
        self.count += 1
        layer = self.tmp / f"layer-{self.count}.tar"
        with tarfile.open(layer, "w") as tar:
            data = f"image {self.count}\n".encode()
            info = tarfile.TarInfo(f"hello-{self.count}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        repository = f"{self.address}/{owner}/{name}"
        result = run(self.crane, "append", "-f", layer, "-t", f"{repository}:t{self.count}")
        assert result.returncode == 0, result.stderr
        digest = run(self.crane, "digest", f"{repository}:t{self.count}").stdout.strip()
        return f"{repository}@{digest}"

    def sign(self, ref, key="release"):
        result = run(self.cosign, "sign", "--yes", "--key", f"{self.keys[key]}.key", "--signing-config", self.config,
                     "--trusted-root", self.root, ref, env=self.env())
        assert result.returncode == 0, result.stderr
        return ref

    def attest(self, ref, key="release"):
        result = run(self.cosign, "attest", "--yes", "--key", f"{self.keys[key]}.key", "--signing-config", self.config,
                     "--trusted-root", self.root, "--type", "spdxjson", "--predicate", self.sbom, ref, env=self.env())
        assert result.returncode == 0, result.stderr
        return ref

    def release(self, name, owner=OWNER.lower(), key="release"):
        return self.attest(self.sign(self.push(name, owner), key), key)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    crane, cosign = go_tool(*CRANE), go_tool(*COSIGN)
    reg = Registry(crane, cosign, tmp_path_factory.mktemp("verify-images"))
    yield reg
    reg.proc.kill()
    reg.proc.wait()


def verify(registry, *refs, key="release", **extra):
    unset = ("GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_REPOSITORY_OWNER", "GITHUB_SERVER_URL", "REGISTRY",
             "GHCR_PULL_USER", "GHCR_PULL_TOKEN", "RECETTE_KUBECONFIG", "DOCKER_CONFIG")
    env = {k: v for k, v in registry.env().items() if k not in unset}
    env.update(PATH=f"{Path(registry.cosign).parent}:{env['PATH']}", REGISTRY=registry.address,
               GITHUB_REPOSITORY_OWNER=OWNER, GITHUB_REPOSITORY=f"{OWNER}/datapress", **extra)
    options = ["--key", f"{registry.keys[key]}.pub"] if key else []
    return run(VERIFY, *options, *refs, env=env)


def test_accepts_signed_and_attested_digests_without_printing_the_pull_token(registry):
    token = "ghp_" + "z" * 36
    api, front = registry.release("datapress-api"), registry.release("datapress-front")
    result = verify(registry, api, front, GHCR_PULL_USER="bot", GHCR_PULL_TOKEN=token)
    assert result.returncode == 0, result.stderr
    for ref in (api, front):
        assert f"{ref}: signature and SBOM attestation verified" in result.stderr
    assert token not in result.stdout + result.stderr


def test_refuses_an_unsigned_digest(registry):
    ref = registry.push("datapress-api")
    result = verify(registry, ref)
    assert result.returncode != 0 and f"{ref}: signature verification failed" in result.stderr


def test_refuses_a_signed_digest_without_sbom_attestation(registry):
    ref = registry.sign(registry.push("datapress-front"))
    result = verify(registry, ref)
    assert result.returncode != 0 and f"{ref}: SBOM attestation (spdxjson) verification failed" in result.stderr


def test_refuses_an_attested_digest_without_signature(registry):
    # cosign v3 verify alone accepts an attestation bundle as a signature.
    ref = registry.attest(registry.push("datapress-front"))
    result = verify(registry, ref)
    assert result.returncode != 0
    assert f"{ref}: signature verification failed: cosign verified an attestation, not a signature" in result.stderr


@pytest.mark.parametrize("signer", ["signature", "attestation", "both"])
def test_refuses_a_digest_signed_or_attested_with_another_key(registry, signer):
    ref = registry.push("datapress-api")
    registry.sign(ref, "other" if signer in ("signature", "both") else "release")
    registry.attest(ref, "other" if signer in ("attestation", "both") else "release")
    result = verify(registry, ref)
    failed = "SBOM attestation (spdxjson)" if signer == "attestation" else "signature"
    assert result.returncode != 0 and f"{ref}: {failed} verification failed" in result.stderr


def test_refuses_another_owner_without_contacting_the_registry(registry):
    # Signed and attested with the right key, in the right registry: only the owner is wrong.
    good = registry.release("datapress-api")
    other = registry.release("datapress-front", owner="other-org")
    before = registry.requests()
    result = verify(registry, good, other)
    assert result.returncode != 0 and f"'{other}' is not an image digest of" in result.stderr
    assert registry.requests() == before, "the registry was contacted"


def test_refuses_another_registry_without_contacting_it(registry):
    good = registry.release("datapress-api")
    with socket.socket() as listener:  # a registry that records whether anything connects
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        foreign = good.replace(registry.address, f"127.0.0.1:{listener.getsockname()[1]}")
        before = registry.requests()
        result = verify(registry, good, foreign)
        assert result.returncode != 0 and f"'{foreign}' is not an image digest of" in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert registry.requests() == before, "a registry was contacted"


@pytest.mark.parametrize("ref", ["tag", "name"])
def test_refuses_a_tag_or_another_image_name(registry, ref):
    good = registry.release("datapress-api")
    bad = good.split("@")[0] + ":t1" if ref == "tag" else good.replace("datapress-api@", "other-api@")
    result = verify(registry, bad)
    assert result.returncode != 0 and f"'{bad}' is not an image digest of" in result.stderr


def test_the_test_key_is_refused_on_github_actions(registry):
    result = verify(registry, registry.release("datapress-api"), GITHUB_ACTIONS="true")
    assert result.returncode != 0 and "--key is for offline tests only" in result.stderr


def test_the_release_path_refuses_a_digest_signed_with_any_key(registry):
    # Keyless (no --key): only a certificate of the release workflow verifies. Offline, cosign
    # cannot even fetch the public trust root; on GitHub it finds no such certificate.
    ref = registry.release("datapress-api")
    result = verify(registry, ref, key=None)
    assert result.returncode != 0 and f"{ref}: signature verification failed" in result.stderr


def test_deploy_recette_stops_on_the_verification_before_using_the_kubeconfig(registry, tmp_path):
    # Nothing after the verification may run: an empty tool cache and a `go` that records any
    # call show that no tool (kustomize, kubectl) was even prepared.
    api, front = registry.release("datapress-api"), registry.release("datapress-front")
    shims, cache = tmp_path / "bin", tmp_path / "cache"
    shims.mkdir()
    (shims / "go").write_text(f"#!/bin/sh\necho \"$*\" >>{tmp_path}/go-calls\nexit 1\n")
    (shims / "go").chmod(0o755)
    env = {k: v for k, v in registry.env().items() if not k.startswith(("GITHUB_", "GHCR_")) and k != "REGISTRY"}
    env.update(PATH=f"{Path(registry.cosign).parent}:{shims}:{env['PATH']}", DATAPRESS_CACHE=str(cache),
               REGISTRY=registry.address, GITHUB_REPOSITORY_OWNER=OWNER, GITHUB_REPOSITORY=f"{OWNER}/datapress",
               RECETTE_KUBECONFIG="not a kubeconfig", DEPLOY_SMOKE_BROWSER="0")
    result = run(DEPLOY, api, front, env=env, timeout=600)
    assert result.returncode != 0 and f"{api}: signature verification failed" in result.stderr
    assert not (tmp_path / "go-calls").exists(), "a tool was built before the verification"
    assert not any(cache.iterdir()), f"the tool cache was used: {sorted(p.name for p in cache.iterdir())}"
    assert "cluster does not answer" not in result.stderr
