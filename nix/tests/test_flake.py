#!/usr/bin/env python3
"""What can be checked of the flake on a machine that cannot fetch its inputs.

1. flake.lock agrees with flake.nix (inputs read by Nix itself), so Nix never re-locks.
2. flake.nix and nix/*.nix, evaluated by Debian's Nix against stand-ins for nixpkgs, crane
   and rust-overlay (nix/tests/eval.nix), expose the packages and checks CI builds, and
   read the image contract, the workspace version and the toolchain file as intended.
3. The shell scripts that lay out the image roots and /tmp run for real on a copy of the
   files they name, as the Nix sandbox would run them (read-only sources, `set -eu`).
Nothing here builds with nixpkgs: that happens in GitHub Actions.
Usage: nix/tests/test_flake.py [unittest args]   (standard library; needs nix-instantiate;
       DP_ROOT=DIR checks another copy of the repository)
"""

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("DP_ROOT") or Path(__file__).resolve().parents[2]).resolve()
SYSTEMS = {"x86_64-linux": "x86_64-unknown-linux-musl", "aarch64-linux": "aarch64-unknown-linux-musl"}


def nix_eval_json(*args):
    out = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", *args],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def original_from_url(url):
    """The `original` attribute Nix writes for a flake URL (only the github: form is used)."""
    m = re.fullmatch(r"github:([^/?#]+)/([^/?#]+)(?:/([^?#]+))?", url)
    if not m:
        raise ValueError(f"unsupported input URL (expected github:OWNER/REPO[/REF]): {url}")
    owner, repo, ref = m.groups()
    original = {"type": "github", "owner": owner, "repo": repo}
    if ref:
        original["rev" if re.fullmatch(r"[0-9a-f]{40}", ref) else "ref"] = ref
    return original


class FlakeLock(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lock = json.loads((ROOT / "flake.lock").read_text())
        cls.nodes = cls.lock["nodes"]
        cls.inputs = nix_eval_json("-E", "(import ./flake.nix).inputs")

    def node(self, name):
        return self.nodes[self.nodes["root"]["inputs"][name]]

    def test_format_is_version_7(self):
        self.assertEqual(self.lock["version"], 7)
        self.assertEqual(self.lock["root"], "root")
        self.assertIn("root", self.nodes)

    def test_every_input_is_locked(self):
        self.assertEqual(set(self.nodes["root"]["inputs"]), set(self.inputs))
        for name in self.inputs:
            with self.subTest(input=name):
                self.assertIn(self.nodes["root"]["inputs"][name], self.nodes)

    def test_original_matches_the_url(self):
        for name, spec in self.inputs.items():
            with self.subTest(input=name):
                self.assertEqual(self.node(name)["original"], original_from_url(spec["url"]))

    def test_locked_is_a_well_formed_pin(self):
        for name in self.inputs:
            with self.subTest(input=name):
                locked, original = self.node(name)["locked"], self.node(name)["original"]
                for key in ("type", "owner", "repo"):
                    self.assertEqual(locked[key], original[key])
                self.assertRegex(locked["rev"], r"^[0-9a-f]{40}$")
                self.assertRegex(locked["narHash"], r"^sha256-[A-Za-z0-9+/]{43}=$")
                self.assertIsInstance(locked["lastModified"], int)
                self.assertNotIn("ref", locked)

    def test_non_flake_inputs_are_marked(self):
        for name, spec in self.inputs.items():
            with self.subTest(input=name):
                self.assertEqual(self.node(name).get("flake", True), spec.get("flake", True))

    def test_follows_are_recorded(self):
        for name, spec in self.inputs.items():
            for sub, sub_spec in spec.get("inputs", {}).items():
                with self.subTest(input=f"{name}.{sub}"):
                    self.assertIn("follows", sub_spec, "only follows are declared for inputs' inputs")
                    path = sub_spec["follows"].split("/")
                    self.assertEqual(self.node(name).get("inputs", {}).get(sub), path)
                    self.assertIn(path[0], self.inputs)

    def test_no_orphan_node(self):
        reachable, todo = set(), ["root"]
        while todo:
            name = todo.pop()
            self.assertIn(name, self.nodes)
            if name not in reachable:
                reachable.add(name)
                # A list is a follows path, not a node of its own.
                todo += [ref for ref in self.nodes[name].get("inputs", {}).values() if isinstance(ref, str)]
        self.assertEqual(set(self.nodes), reachable)


class FlakeOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = nix_eval_json("nix/tests/eval.nix")
        cls.contract = json.loads((ROOT / "images/contract.json").read_text())
        cls.version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]

    def each_system(self):
        self.assertEqual(set(self.out["systems"]), set(SYSTEMS))
        for system in SYSTEMS:
            with self.subTest(system=system):
                yield system, self.out[system]

    def test_packages_ci_builds(self):
        for _, s in self.each_system():
            self.assertEqual(set(s["packages"]), {"api", "api-image", "front-image", "default"})
            self.assertTrue(s["defaultIsApi"])

    def test_checks(self):
        for _, s in self.each_system():
            self.assertEqual(s["checks"], {"api": "package", "clippy": "clippy", "fmt": "fmt",
                                           "nextest": "nextest", "audit": "audit"})
            self.assertEqual(s["clippyArgs"], "--all-targets -- --deny warnings")
            self.assertEqual(s["auditDb"], "@advisory-db@")

    def test_api_is_static_musl_from_the_pinned_toolchain(self):
        for system, s in self.each_system():
            target = SYSTEMS[system]
            api = s["api"]
            self.assertEqual(api["toolchain"], {"toolchainFile": str(ROOT / "rust-toolchain.toml"),
                                                "targets": [target]})
            self.assertEqual((api["CARGO_BUILD_TARGET"], api["depsTarget"], s["nextestTarget"]),
                             (target, target, target))
            self.assertEqual(api["pname"], "datapress-api")
            self.assertIn("--locked", api["cargoExtraArgs"])
            self.assertFalse(api["doCheck"], "tests run once, in the nextest check")
            self.assertEqual(api["DATAPRESS_REVISION"], "0123456789abcdef0123456789abcdef01234567")

    def test_rust_toolchain_file_pins_the_musl_target(self):
        # The offline builder ships the same target as the flake's x86_64 build.
        toolchain = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]
        self.assertEqual(toolchain["targets"], [SYSTEMS["x86_64-linux"]])

    def test_dev_shell_and_formatter(self):
        for _, s in self.each_system():
            for tool in ("kubectl", "kustomize", "docker-compose", "nixpkgs-fmt", "deadnix", "jq"):
                self.assertIn(tool, s["devShellPackages"])
            self.assertEqual(s["formatter"], "nixpkgs-fmt")

    def test_images_follow_the_contract(self):
        c = self.contract
        for _, s in self.each_system():
            for key in ("api", "front"):
                with self.subTest(image=key):
                    want, img = c["images"][key], s["images"][key]
                    cfg = img["config"]
                    self.assertEqual(img["name"], want["name"])
                    self.assertEqual(img["tag"], self.version)
                    self.assertEqual(img["created"], "2026-08-03T05:49:05Z")
                    self.assertEqual(cfg["User"], c["user"])
                    self.assertEqual(cfg["Entrypoint"], want["entrypoint"])
                    self.assertEqual(cfg["Cmd"], want["cmd"])
                    self.assertEqual(cfg["Env"], want["env"])
                    self.assertEqual(sorted(cfg["ExposedPorts"]), sorted(want["ports"]))
                    self.assertEqual(cfg["StopSignal"], want["stopSignal"])
                    self.assertEqual(cfg["Healthcheck"]["Test"], ["CMD", *want["healthcheck"]])
                    t = c["healthcheckTiming"]
                    self.assertEqual(
                        [cfg["Healthcheck"][k] for k in ("Interval", "Timeout", "StartPeriod")],
                        [t[k] * 10**9 for k in ("intervalSeconds", "timeoutSeconds", "startPeriodSeconds")])
                    self.assertEqual(cfg["Healthcheck"]["Retries"], t["retries"])
                    self.assertEqual(cfg["Labels"], {
                        "org.opencontainers.image.title": want["title"],
                        "org.opencontainers.image.description": want["description"],
                        "org.opencontainers.image.source": c["source"],
                        "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
                        "org.opencontainers.image.version": self.version,
                        "org.opencontainers.image.licenses": c["licenses"],
                        "org.opencontainers.image.created": "2026-08-03T05:49:05Z",
                    })
                    self.assertEqual(img["nss"], {
                        "extraPasswdLines": [f"{c['username']}:x:{c['uid']}:{c['gid']}:{c['username']}:/home/{c['username']}:/sbin/nologin"],
                        "extraGroupLines": [f"{c['username']}:x:{c['gid']}:"],
                    })
                    self.assertEqual(img["others"], ["@ca-certificates@"])
                    self.assertEqual(len(img["roots"]), 1)

    def test_front_nginx_is_built_without_perl(self):
        for _, s in self.each_system():
            script = s["images"]["front"]["roots"][0]["script"]
            self.assertIn("@nginx-withPerl=false-withStream=false@/bin/nginx", script)


class ImageScripts(unittest.TestCase):
    """Runs the image-root scripts and extraCommands as the Nix sandbox would."""

    @classmethod
    def setUpClass(cls):
        cls.images = nix_eval_json("nix/tests/eval.nix")["x86_64-linux"]["images"]
        cls.tmp = Path(tempfile.mkdtemp(prefix="dp-nix-test-"))
        # Stand-ins for the store paths the scripts name.
        api = cls.tmp / "store/api/bin/datapress-api"
        api.parent.mkdir(parents=True)
        api.write_text("#!/bin/sh\nexit 0\n")
        api.chmod(0o555)
        (cls.tmp / "store/nginx/bin").mkdir(parents=True)

    @classmethod
    def tearDownClass(cls):
        for p in cls.tmp.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(cls.tmp)

    def run_script(self, name, script):
        """Copies each `@source=a,b@` file list, then runs the script with set -eu in a fresh dir."""
        def source(m):
            dest = self.tmp / "store" / f"{name}-source"
            for rel in m.group(1).split(","):
                src = ROOT / "front" / rel
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dest / rel)
                else:
                    shutil.copy2(src, dest / rel)
            for p in sorted(dest.rglob("*"), reverse=True) + [dest]:  # read-only, like the store
                p.chmod(p.stat().st_mode & ~0o222)
            return str(dest)

        script = re.sub(r"@source=([^@]*)@", source, script)
        script = script.replace("@api@", str(self.tmp / "store/api"))
        script = re.sub(r"@nginx[^@]*@", str(self.tmp / "store/nginx"), script)
        self.assertNotIn("@", script.replace("$out", ""), "an unknown placeholder is left")
        build, out = self.tmp / f"build-{name}", self.tmp / f"out-{name}"
        build.mkdir()
        env = {**os.environ, "out": str(out)}
        env.pop("DATAPRESS_VERSION", None)
        subprocess.run([*self.as_builder(build), "bash", "-euo", "pipefail", "-c", script],
                       cwd=build, env=env, check=True)
        return out

    def as_builder(self, build):
        """Nix builds as an unprivileged user, for whom read-only sources really are read-only."""
        if os.geteuid() != 0:
            return []
        if not shutil.which("setpriv"):
            self.skipTest("running as root without setpriv: read-only sources cannot be enforced")
        for d in (self.tmp, build):
            os.chown(d, 65534, 65534)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    def test_api_root(self):
        out = self.run_script("api", self.images["api"]["roots"][0]["script"])
        binary = out / "usr/bin/datapress-api"
        self.assertEqual(stat.S_IMODE(binary.stat().st_mode), 0o555)
        self.assertEqual(sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()),
                         ["usr/bin/datapress-api"])

    def test_front_root(self):
        out = self.run_script("front", self.images["front"]["roots"][0]["script"])
        html = out / "usr/share/nginx/html"
        index = (html / "index.html").read_text()
        major_minor = ".".join(self.images["front"]["tag"].split(".")[:2])
        self.assertIn(major_minor, index)
        self.assertNotIn("__DATAPRESS_VERSION__", index)
        self.assertTrue(re.search(r'assets/[0-9a-f]{12}/app\.js', index), "hashed assets, as front/build.sh does")
        for rel in ("etc/nginx/nginx.conf", "etc/nginx/mime.types", "etc/nginx/upstream.d/api.conf"):
            self.assertEqual((out / rel).read_bytes(), (ROOT / "front/nginx" / rel.removeprefix("etc/nginx/")).read_bytes())
        self.assertEqual(sorted(p.name for p in (out / "etc/nginx/upstream.d").iterdir()), ["api.conf"])
        self.assertTrue(os.access(out / "usr/bin/datapress-api", os.X_OK))
        self.assertEqual(os.readlink(out / "usr/sbin/nginx"), str(self.tmp / "store/nginx/bin/nginx"))

    def test_tmp_and_home(self):
        """extraCommands, then fakeRootCommands (run as root here, under fakeroot in Nix)."""
        if os.geteuid() != 0:
            self.skipTest("chown in fakeRootCommands needs root (Nix uses fakeroot)")
        for key in ("api", "front"):
            with self.subTest(image=key):
                layer = self.tmp / f"layer-{key}"
                layer.mkdir()
                for commands in (self.images[key]["extraCommands"], self.images[key]["fakeRootCommands"]):
                    subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=layer, check=True)
                self.assertEqual(sorted(p.name for p in layer.iterdir()), ["home", "tmp"])
                self.assertEqual(stat.S_IMODE((layer / "tmp").stat().st_mode), 0o1777)
                user = json.loads((ROOT / "images/contract.json").read_text())["username"]
                home = layer / "home" / user
                st = home.stat()
                self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o700, 65532, 65532))


if __name__ == "__main__":
    unittest.main(verbosity=2)
