#!/usr/bin/env python3
"""What can be checked of the flake on a machine that cannot fetch its inputs.

1. flake.lock agrees with flake.nix (inputs read by Nix itself), so Nix never re-locks.
2. flake.nix and nix/*.nix, evaluated by Debian's Nix against stand-ins for nixpkgs, crane
   and rust-overlay (nix/tests/eval.nix), expose the packages and checks CI builds, and
   read the image contract, the workspace version and the toolchain file as intended.
3. The shell scripts that lay out the image roots and /tmp, and those of the image checks
   (static API binary, minimal NGINX, `nginx -t`, sizes), run for real on a copy of the
   files they name, as the Nix sandbox would run them (read-only sources, `set -eu`), with
   stand-ins for nixpkgs' packages (Debian's NGINX, a small C program).
Nothing here builds with nixpkgs: that happens in GitHub Actions.
Usage: nix/tests/test_flake.py [unittest args]   (standard library; needs nix-instantiate;
       DP_ROOT=DIR checks another copy of the repository)
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("DP_ROOT") or Path(__file__).resolve().parents[2]).resolve()
SYSTEMS = {"x86_64-linux": "x86_64-unknown-linux-musl", "aarch64-linux": "aarch64-unknown-linux-musl"}
# /etc/passwd, group and nsswitch.conf as images/assemble.py writes them: no shell for anyone.
NSS = [
    {"path": "etc/passwd", "text": "root:x:0:0:root:/root:/sbin/nologin\n"
     "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
    {"path": "etc/group", "text": "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"},
    {"path": "etc/nsswitch.conf", "text": "passwd: files\ngroup: files\nhosts: files dns\n"},
]


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
            self.assertEqual(set(s["packages"]), {"api", "api-image", "front-image", "default",
                                                  "api-image-closure", "front-image-closure"})
            self.assertTrue(s["defaultIsApi"])

    def test_checks(self):
        for _, s in self.each_system():
            self.assertEqual(s["checks"], {"api": "package", "clippy": "clippy", "fmt": "fmt",
                                           "nextest": "nextest", "audit": "audit",
                                           "api-static": "command", "front-nginx-minimal": "command",
                                           "front-nginx-config": "command", "api-image-size": "command",
                                           "front-image-size": "command"})
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
            # The C allocator is compiled by a musl compiler, never against glibc's headers.
            self.assertEqual(api["cc"], {f"CC_{target.replace('-', '_')}": f"@musl-cc@/bin/{target}-cc"})

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
                    self.assertEqual(img["nss"], NSS)
                    self.assertEqual(img["others"], ["@ca-certificates@"])
                    self.assertEqual(len(img["roots"]), 1)
                    self.assertEqual(img["roots"][0]["allowedReferences"], [], "copies only: no store path")
                    tags = [self.version, *c["extraTags"]]
                    self.assertEqual(img["archive"]["tags"], tags)
                    self.assertTrue(img["archive"]["script"].rstrip().endswith(
                        " ".join(f"{want['name']}:{t}" for t in tags)), img["archive"]["script"])
                    self.assertEqual(img["archive"]["maxSizeMB"], want["maxSizeMB"])

    def test_no_user_has_a_shell(self):
        passwd = next(f["text"] for f in NSS if f["path"] == "etc/passwd")
        for line in passwd.splitlines():
            self.assertEqual(line.split(":")[6], "/sbin/nologin", line)

    def test_size_limits_come_from_the_contract(self):
        for _, s in self.each_system():
            for key in ("api", "front"):
                self.assertIn(f"image-archive.py check-size @datapress-{key}-1.0.0.tar@ "
                              f"{self.contract['images'][key]['maxSizeMB']}\n", s["checkScripts"][f"{key}-image-size"])

    def test_sbom_closures_cover_each_image(self):
        for _, s in self.each_system():
            for key, extra in (("api", ["@api@"]), ("front", ["@nginx-small@", "@api@"])):
                want = [f"@datapress-{key}-root@", "@datapress-nss@", "@ca-certificates@", *extra]
                self.assertEqual(s["closures"][f"{key}-image-closure"].splitlines(), want)
                self.assertEqual(s["images"][key]["closure"].splitlines(), want)

    def test_front_nginx_is_built_minimal(self):
        for _, s in self.each_system():
            self.assertEqual(s["nginx"]["overrideArgs"], {"withPerl": False, "withStream": False,
                                                          "withMail": False, "modules": []})
            self.assertEqual(s["nginx"]["overridden"], {"configureFlags": ["--with-http_ssl_module", "--with-threads"],
                                                        "buildInputs": ["@openssl@", "@zlib-ng@", "@pcre2@"]})
            self.assertIn("nginx=@nginx-small@/bin/nginx", s["images"]["front"]["roots"][0]["script"])
            self.assertEqual(s["images"]["front"]["roots"][0]["tools"], ["patchelf", "nukeReferences"])


class ImageScripts(unittest.TestCase):
    """Runs the image-root scripts, the image checks and extraCommands as the Nix sandbox
    would, with stand-ins for the store paths: Debian's NGINX plays nixpkgs' (same loader
    and library layout questions), a small C program plays the API binary."""

    @classmethod
    def setUpClass(cls):
        out = nix_eval_json("nix/tests/eval.nix")["x86_64-linux"]
        cls.images, cls.checks = out["images"], out["checkScripts"]
        cls.tmp = Path(tempfile.mkdtemp(prefix="dp-nix-test-"))
        cls.tmp.chmod(0o755)
        cls.version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
        # Stand-ins for the store paths the scripts name.
        api = cls.tmp / "store/api/bin/datapress-api"
        api.parent.mkdir(parents=True)
        api.write_text("#!/bin/sh\nexit 0\n")
        api.chmod(0o555)
        nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
        if nginx:
            (cls.tmp / "store/nginx/bin").mkdir(parents=True)
            shutil.copy2(nginx, cls.tmp / "store/nginx/bin/nginx")
        # nuke-refs blanks /nix/store hashes: none in Debian's files, so nothing to do.
        (cls.tmp / "bin").mkdir()
        (cls.tmp / "bin/nuke-refs").write_text("#!/bin/sh\nfor f; do test -f \"$f\"; done\n")
        (cls.tmp / "bin/nuke-refs").chmod(0o755)
        cls.roots = {}

    @classmethod
    def tearDownClass(cls):
        for p in cls.tmp.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(cls.tmp)

    def need(self, *tools):
        missing = [t for t in tools if not shutil.which(t, path=f"/usr/sbin:{os.environ['PATH']}")]
        if missing:
            self.skip_unless_ci(f"needs {', '.join(missing)} (nix/tools.sh lint installs them)")

    def skip_unless_ci(self, reason):
        """A missing tool skips a test on a developer's machine; under CI=true (make test via
        .ci/run, where nix/tools.sh installed everything) it is a failure, never a skip."""
        if os.environ.get("CI") == "true":
            self.fail(f"would be skipped under CI: {reason}")
        self.skipTest(reason)

    def run_script(self, name, script, check=True, **placeholders):
        """Copies each `@source=a,b@` file list, maps the store paths the script names to
        stand-ins, then runs it with set -eu in a fresh dir. Returns ($out, the process)."""
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

        def repository_file(m):  # a file of the repository the flake copied to the store
            found = [p for d in ("nix", "images") for p in (ROOT / d).glob(m.group(1))]
            self.assertEqual(len(found), 1, m.group(0))
            return str(found[0])

        script = re.sub(r"@source=([^@]*)@", source, script)
        script = re.sub(r"/nix/store/[a-z0-9]{32}-([\w.-]+)", repository_file, script)
        for placeholder, path in {"@api@": self.tmp / "store/api", **placeholders}.items():
            script = script.replace(placeholder, str(path))
        script = re.sub(r"@nginx[^@]*@", str(self.tmp / "store/nginx"), script)
        self.assertIsNone(re.search(r"@[\w.=,-]+@", script), "an unknown placeholder is left")
        build = self.tmp / f"build-{name}"
        out = build / "out"  # writable by the unprivileged builder
        build.mkdir()
        env = {**os.environ, "out": str(out), "PATH": f"{self.tmp / 'bin'}:/usr/sbin:{os.environ['PATH']}"}
        env.pop("DATAPRESS_VERSION", None)
        p = subprocess.run([*self.as_builder(build), "bash", "-euo", "pipefail", "-c", script],
                           cwd=build, env=env, capture_output=True, text=True)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        return out, p

    def as_builder(self, build):
        """Nix builds as an unprivileged user, for whom read-only sources really are read-only."""
        if os.geteuid() != 0:
            return []
        if not shutil.which("setpriv"):
            self.skipTest("running as root without setpriv: read-only sources cannot be enforced")
        os.chown(build, 65534, 65534)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    def root(self, key):
        """The image root script's output, built once per test class."""
        if key not in self.roots:
            if key == "front":
                self.need("nginx", "patchelf")
            self.roots[key] = self.run_script(key, self.images[key]["roots"][0]["script"])[0]
        return self.roots[key]

    def test_api_root(self):
        out = self.root("api")
        binary = out / "usr/bin/datapress-api"
        self.assertEqual(stat.S_IMODE(binary.stat().st_mode), 0o555)
        self.assertEqual(sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()),
                         ["usr/bin/datapress-api"])

    def test_front_root(self):
        out = self.root("front")
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

    def test_front_nginx_runs_from_its_own_lib(self):
        """A copy, not a link into the store, that finds its loader and libraries in /lib."""
        out = self.root("front")
        nginx = out / "usr/sbin/nginx"
        self.assertFalse(nginx.is_symlink())
        elf = subprocess.run(["patchelf", "--print-interpreter", "--print-rpath", str(nginx)],
                             capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual(elf, ["/lib/ld-linux-x86-64.so.2", "/lib"])
        self.assertTrue({"ld-linux-x86-64.so.2", "libc.so.6", "libssl.so.3", "libcrypto.so.3"}
                        <= {p.name for p in (out / "lib").iterdir()})
        self.assertEqual(stat.S_IMODE((out / "lib/ld-linux-x86-64.so.2").stat().st_mode), 0o555)
        if os.geteuid() != 0:
            self.skipTest("chroot needs root")
        p = subprocess.run(["chroot", str(out), "/usr/sbin/nginx", "-v"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nginx version", p.stderr)

    def test_front_nginx_config_check(self):
        root = self.root("front")
        self.run_script("nginx-config", self.checks["front-nginx-config"], **{"@datapress-front-root@": root})
        # A configuration NGINX refuses makes the check fail.
        broken = self.tmp / "broken-root"
        shutil.copytree(root, broken, symlinks=True)
        conf = broken / "etc/nginx/nginx.conf"
        conf.chmod(0o644)
        conf.write_text(conf.read_text().replace("events {", "no_such_directive on;\nevents {"))
        _, p = self.run_script("nginx-config-broken", self.checks["front-nginx-config"], check=False,
                               **{"@datapress-front-root@": broken})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no_such_directive", p.stderr)

    def test_front_nginx_minimal_check(self):
        # Debian's NGINX has the modules the front's must not have: the check refuses it.
        _, p = self.run_script("nginx-minimal", self.checks["front-nginx-minimal"], check=False,
                               **{"@datapress-front-root@": self.root("front")})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("NGINX is built with", p.stderr)
        self.assertIn("--with-stream", p.stderr)
        # And it accepts an NGINX without them.
        minimal = self.tmp / "nginx-V"
        minimal.write_text("nginx version: nginx/1.28.0\nconfigure arguments: --with-http_ssl_module --with-threads\n")
        p = subprocess.run(["bash", str(ROOT / "nix/front-nginx-minimal.sh"), str(minimal)], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def api_binary(self, static):
        """A C stand-in for the API binary, printing what `datapress-api version` prints."""
        self.need("cc", "readelf")
        d = self.tmp / f"store/api-{'static' if static else 'dynamic'}"
        (d / "bin").mkdir(parents=True)
        src = d / "version.c"
        src.write_text('#include <stdio.h>\nint main(void) { puts("datapress-api %s (%s)"); return 0; }\n'
                       % (self.version, "0123456789abcdef0123456789abcdef01234567"))
        p = subprocess.run(["cc", *(["-static"] if static else []), "-o", str(d / "bin/datapress-api"), str(src)],
                           capture_output=True, text=True)
        if p.returncode:
            self.skip_unless_ci(f"cc cannot build the stand-in: {p.stderr[-300:]}")
        return d

    def test_api_static_check(self):
        for static in (True, False):
            with self.subTest(static=static):
                api = self.api_binary(static)
                root = self.tmp / f"api-root-{static}"
                (root / "usr/bin").mkdir(parents=True)
                shutil.copy2(api / "bin/datapress-api", root / "usr/bin/datapress-api")
                _, p = self.run_script(f"api-static-{static}", self.checks["api-static"], check=False,
                                       **{"@api@": api, "@datapress-api-root@": root})
                if static:
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertEqual(p.stdout.count("static, reports"), 2, p.stdout)
                else:
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("dynamically linked", p.stderr)

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
                self.assertEqual(sorted(p.name for p in layer.iterdir()), ["home", "root", "tmp"])
                self.assertEqual(stat.S_IMODE((layer / "tmp").stat().st_mode), 0o1777)
                self.assertEqual(stat.S_IMODE((layer / "root").stat().st_mode), 0o700)
                user = json.loads((ROOT / "images/contract.json").read_text())["username"]
                home = layer / "home" / user
                st = home.stat()
                self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o700, 65532, 65532))


class ImageArchive(unittest.TestCase):
    """nix/image-archive.py on archives shaped like dockerTools' and `docker save`'s."""

    SCRIPT = ROOT / "nix/image-archive.py"

    def archive(self, compress):
        """One image: a manifest, a config, two layers (a 1000-byte file and a symlink; a 24-byte file)."""
        def tar_bytes(entries):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                for name, data, link in entries:
                    info = tarfile.TarInfo(name)
                    if link:
                        info.type, info.linkname = tarfile.SYMTYPE, link
                        tar.addfile(info)
                    else:
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
            return buf.getvalue()

        layer1 = tar_bytes([("usr/bin/app", b"x" * 1000, None), ("usr/bin/link", b"", "app")])
        layer2 = tar_bytes([("etc/passwd", b"root:x:0:0::/:/sbin/nologin\n"[:24], None)])
        manifest = [{"Config": "c.json", "RepoTags": ["app:1.0.0"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
        outer = tar_bytes([("manifest.json", json.dumps(manifest).encode(), None),
                           ("repositories", json.dumps({"app": {"1.0.0": "l2"}}).encode(), None),
                           ("c.json", b"{}", None), ("l1/layer.tar", layer1, None), ("l2/layer.tar", layer2, None)])
        path = Path(tempfile.mkdtemp()) / ("image.tar.gz" if compress else "image.tar")
        self.addCleanup(shutil.rmtree, path.parent)
        path.write_bytes(gzip.compress(outer, mtime=0) if compress else outer)
        return path

    def run_script(self, *args):
        return subprocess.run([sys.executable, str(self.SCRIPT), *map(str, args)], capture_output=True, text=True)

    def test_size_counts_files_and_links(self):
        for compress in (True, False):
            with self.subTest(compress=compress):
                p = self.run_script("size", self.archive(compress))
                self.assertEqual(p.stdout.strip(), str(1000 + len("app") + 24), p.stderr)

    def test_check_size_fails_over_the_limit(self):
        image = self.archive(True)
        self.assertEqual(self.run_script("check-size", image, "0.002").returncode, 0)
        p = self.run_script("check-size", image, "0.001")
        self.assertEqual(p.returncode, 1)
        self.assertIn("OVER the 0.001 MB limit", p.stdout)

    def test_retag_names_every_tag(self):
        src = self.archive(True)
        dst = src.parent / "retagged.tar"
        digests = set()
        for _ in range(2):  # same input, same bytes
            p = self.run_script("retag", src, dst, "app:1.0.0", "app:dev")
            self.assertEqual(p.returncode, 0, p.stderr)
            digests.add(hashlib.sha256(dst.read_bytes()).hexdigest())
        self.assertEqual(len(digests), 1)
        with tarfile.open(dst) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
            repositories = json.load(tar.extractfile("repositories"))
            self.assertEqual(tar.extractfile("l1/layer.tar").read()[:512], tarfile.open(src).extractfile("l1/layer.tar").read()[:512])
        self.assertEqual(manifest[0]["RepoTags"], ["app:1.0.0", "app:dev"])
        self.assertEqual(repositories, {"app": {"1.0.0": "l2", "dev": "l2"}})
        self.assertEqual(self.run_script("size", dst).stdout, self.run_script("size", src).stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
