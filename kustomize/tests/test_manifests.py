"""Checks on what kustomize renders, tied to the rest of the repository.

Run by kustomize/tests/validate.sh, which renders base, and dev and recette (platform part,
application part, both together) into MANIFESTS_DIR first. Every number checked here is read from its source of truth
(images/contract.json, Cargo.toml, K8S_VERSION, front/nginx, api/src), never retyped.
"""

import base64
import copy
import json
import os
import re
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path

import kubernetes_validate
import yaml

import cluster_rules

ROOT = Path(os.environ["DP_ROOT"])
RENDERED = Path(os.environ["MANIFESTS_DIR"])
KUBECTL = os.environ["KUBECTL"]
K8S_VERSION = (ROOT / "K8S_VERSION").read_text().strip()
CONTRACT = json.loads((ROOT / "images/contract.json").read_text())
WORKSPACE_VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
NGINX_CONF = (ROOT / "front/nginx/nginx.conf").read_text()
KUSTOMIZE = ROOT / "kustomize"


def api_env_vars():
    """Every environment variable the API reads: its own table, api/src/config.rs ENV_VARS."""
    src = (ROOT / "api/src/config.rs").read_text()
    table = re.search(r"pub const ENV_VARS: &\[\(&str, &str\)\] = &\[(.*?)\];", src, re.S)
    assert table, "api/src/config.rs no longer has its ENV_VARS table"
    return set(re.findall(r'\(\s*"([A-Z][A-Z0-9_]*)",', table.group(1)))


# Anything the manifests set for the API must be one of these, or it would be silently ignored.
API_ENV = api_env_vars()
RESTRICTED_NAMESPACES = {"dev": "datapress-dev", "recette": "datapress-recette"}
MONITORING_LABEL = ("datapress.io/monitoring", "true")


def release_name(key):
    return f"{CONTRACT['releaseRepository']}/{CONTRACT['images'][key]['name']}"


def load(name):
    with open(RENDERED / f"{name}.yaml") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(objs, kind, name=None):
    """The objects of a kind; with a name, exactly one (hashed generator names match by prefix)."""
    found = [o for o in objs if o["kind"] == kind]
    if name is None:
        return found
    hits = [o for o in found if o["metadata"]["name"] == name
            or re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", o["metadata"]["name"])]
    assert len(hits) == 1, f"expected one {kind} {name}, found {[o['metadata']['name'] for o in hits]}"
    return hits[0]


def pod_spec(deploy):
    return deploy["spec"]["template"]["spec"]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def container_port(container, port):
    """A Service targetPort or probe port (number or name) resolved to the container's number."""
    if isinstance(port, int):
        return port
    hits = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert len(hits) == 1, f"port {port!r} not declared by container {container['name']}"
    return hits[0]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def contract_port(image, env_name=None):
    """The port an image listens on, from the image contract (its env, or its single port)."""
    spec = CONTRACT["images"][image]
    if env_name:
        value = next(e.split("=", 1)[1] for e in spec["env"] if e.startswith(env_name + "="))
        return int(value.rsplit(":", 1)[1])
    (port,) = spec["ports"]
    return int(port.split("/")[0])


def api_router():
    """The body of api/src/routes.rs's service(), where every public route is declared."""
    src = (ROOT / "api/src/routes.rs").read_text()
    body = re.search(r"\npub fn service\(.*?\n}\n", src, re.S)
    assert body, "api/src/routes.rs no longer has its service() function"
    return body.group(0)


class Schemas(unittest.TestCase):
    """Strict schema validation of every rendered object at K8S_VERSION."""

    def test_every_object_is_valid_strict(self):
        for name in ("base", "dev", "recette"):
            for obj in load(name):
                with self.subTest(render=name, obj=f"{obj['kind']}/{obj['metadata']['name']}"):
                    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

    def test_strict_mode_rejects_unknown_fields(self):
        # Proves the validation above is really strict: a typo in a container must fail.
        deploy = copy.deepcopy(find(load("recette"), "Deployment", "datapress-api"))
        pod_spec(deploy)["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/ready", "port": 8000}}
        with self.assertRaises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deploy, K8S_VERSION, strict=True)


class Base(unittest.TestCase):
    """The base carries no environment: overlays bring namespace, config, secrets and tags."""

    objs = load("base")

    def test_no_namespace(self):
        for obj in self.objs:
            self.assertNotIn("namespace", obj["metadata"], obj["metadata"]["name"])
        self.assertEqual(find(self.objs, "Namespace"), [])

    def test_no_environment_values(self):
        kinds = {o["kind"] for o in self.objs}
        self.assertNotIn("Secret", kinds)
        names = [o["metadata"]["name"] for o in find(self.objs, "ConfigMap")]
        self.assertEqual([n.rsplit("-", 1)[0] for n in names], ["datapress-front-upstream"])
        for deploy in find(self.objs, "Deployment"):
            for c in containers(pod_spec(deploy)):
                self.assertNotIn(":", c["image"].rpartition("/")[2], "image tags belong to the overlays")
                self.assertNotIn("APP_ENV", env_of(c))

    def test_images_are_the_releases(self):
        # The names the release publishes (contract releaseRepository), so that an overlay only
        # pins a tag or a digest.
        images = {c["image"] for d in find(self.objs, "Deployment") for c in containers(pod_spec(d))}
        self.assertEqual(images, {release_name(k) for k in CONTRACT["images"]})

    def test_overlays_only_patch(self):
        # An overlay adds generated config, never a workload; the platform part adds the rest.
        base_kinds = {(o["kind"], o["metadata"]["name"]) for o in self.objs}
        allowed_new = {"ConfigMap", "Secret"}
        for overlay in ("dev", "recette"):
            for obj in load(f"{overlay}-overlays"):
                key = (obj["kind"], obj["metadata"]["name"])
                if key not in base_kinds:
                    self.assertIn(obj["kind"], allowed_new, f"{overlay} defines {key}")
            files = {p.name for p in (KUSTOMIZE / "overlays" / overlay).iterdir()}
            for f in files:
                text = (KUSTOMIZE / "overlays" / overlay / f).read_text()
                self.assertNotRegex(text, r"(?m)^kind: (Deployment|Service|NetworkPolicy)$",
                                    f"{overlay}/{f} redefines a base object instead of patching it")


# What the namespace's `admin` ClusterRole may not write (cluster-scoped objects, the quota
# and the LimitRange): the platform part, applied by a cluster administrator.
PLATFORM_KINDS = {"Namespace", "ResourceQuota", "LimitRange"}


class PlatformApart(unittest.TestCase):
    """A team holding only the namespace's admin role can apply the application part."""

    def test_split(self):
        for env in ("dev", "recette"):
            with self.subTest(env=env):
                platform, app = load(f"{env}-platform"), load(f"{env}-overlays")
                self.assertEqual({o["kind"] for o in platform} - PLATFORM_KINDS, set(), "platform holds only these")
                self.assertIn("Namespace", {o["kind"] for o in platform})
                self.assertEqual({o["kind"] for o in app} & PLATFORM_KINDS, set(), "the application needs the cluster admin")
                ns = RESTRICTED_NAMESPACES[env]
                self.assertEqual({o["metadata"].get("namespace") for o in app}, {ns})
                self.assertLessEqual({o["metadata"].get("namespace") for o in platform if o["kind"] != "Namespace"}, {ns})


class Overlay:
    """Checks both overlays share; subclasses set `name`."""

    name = ""

    @classmethod
    def setUpClass(cls):
        cls.objs = load(cls.name)
        cls.ns = RESTRICTED_NAMESPACES[cls.name]
        cls.api = find(cls.objs, "Deployment", "datapress-api")
        cls.front = find(cls.objs, "Deployment", "datapress-front")

    def test_everything_in_its_namespace(self):
        ns = find(self.objs, "Namespace", self.ns)
        for obj in self.objs:
            if obj is not ns:
                self.assertEqual(obj["metadata"].get("namespace"), self.ns, obj["metadata"]["name"])

    def test_pod_security_restricted(self):
        labels = find(self.objs, "Namespace", self.ns)["metadata"]["labels"]
        minor = "v" + ".".join(K8S_VERSION.split(".")[:2])
        for mode in ("enforce", "audit", "warn"):
            self.assertEqual(labels[f"pod-security.kubernetes.io/{mode}"], "restricted")
            self.assertEqual(labels[f"pod-security.kubernetes.io/{mode}-version"], minor)

    def test_recommended_labels(self):
        for obj in self.objs:
            labels = obj["metadata"].get("labels", {})
            with self.subTest(obj=f"{obj['kind']}/{obj['metadata']['name']}"):
                self.assertEqual(labels.get("app.kubernetes.io/part-of"), "datapress")
                self.assertEqual(labels.get("app.kubernetes.io/instance"), self.ns)
                self.assertEqual(labels.get("app.kubernetes.io/version"), WORKSPACE_VERSION)
        for deploy, component in ((self.api, "api"), (self.front, "front")):
            for meta in (deploy["metadata"], deploy["spec"]["template"]["metadata"]):
                self.assertEqual(meta["labels"]["app.kubernetes.io/name"], deploy["metadata"]["name"])
                self.assertEqual(meta["labels"]["app.kubernetes.io/component"], component)
                self.assertEqual(meta["labels"]["app.kubernetes.io/version"], WORKSPACE_VERSION)

    def test_images_follow_the_contract(self):
        # Recette runs the release's images (by tag, or by the digests a release pins); dev,
        # the local build under the contract's name.
        for deploy, key in ((self.api, "api"), (self.front, "front")):
            (c,) = pod_spec(deploy)["containers"]
            name, digest = c["image"].split("@") if "@" in c["image"] else (c["image"], None)
            if digest:
                self.assertTrue(self.digest_allowed, f"{c['image']}: {self.name} is not pinned by digest")
                self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")
            else:
                name, _, tag = name.rpartition(":")
                self.assertIn(tag, [WORKSPACE_VERSION, *CONTRACT["extraTags"]])
                self.assertEqual(tag, self.expected_tag)
            self.assertEqual(name, self.image_name(key))

    def test_no_latest_or_untagged_image(self):
        for deploy in find(self.objs, "Deployment"):
            for c in containers(pod_spec(deploy)):
                ref = c["image"]
                self.assertTrue(re.search(r":[\w][\w.-]*$|@sha256:[0-9a-f]{64}$", ref), ref)
                self.assertFalse(ref.endswith(":latest"), ref)

    def test_restricted_fields_on_every_container(self):
        uid = CONTRACT["uid"]
        gid = CONTRACT["gid"]
        for deploy in find(self.objs, "Deployment"):
            spec = pod_spec(deploy)
            pod_sc = spec.get("securityContext", {})
            self.assertIs(spec.get("enableServiceLinks"), False)
            self.assertIs(spec.get("automountServiceAccountToken"), False)
            sa = find(self.objs, "ServiceAccount", spec["serviceAccountName"])
            self.assertIs(sa.get("automountServiceAccountToken"), False)
            self.assertIsNone(spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))
            tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
            for c in containers(spec):
                with self.subTest(deploy=deploy["metadata"]["name"], container=c["name"]):
                    sc = c.get("securityContext", {})
                    # The effective value: the container's, else the pod's.
                    eff = lambda k: sc.get(k, pod_sc.get(k))
                    self.assertIs(eff("runAsNonRoot"), True)
                    self.assertEqual(eff("runAsUser"), uid)
                    self.assertEqual(eff("runAsGroup"), gid)
                    self.assertEqual(eff("seccompProfile"), {"type": "RuntimeDefault"})
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True)
                    self.assertIs(sc.get("allowPrivilegeEscalation"), False)
                    self.assertFalse(sc.get("privileged", False))
                    self.assertEqual(sc.get("capabilities"), {"drop": ["ALL"]})
                    tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
                    self.assertEqual(len(tmp), 1, "an emptyDir on /tmp")
                    self.assertIn(tmp[0]["name"], tmp_volumes)
                    self.assertIn("memory", c["resources"]["limits"])
                    self.assertIn("cpu", c["resources"]["requests"])
                    self.assertIn("memory", c["resources"]["requests"])
                    self.assertTrue(c["lifecycle"]["preStop"]["sleep"]["seconds"] > 0)

    def test_rolling_update_drops_nothing(self):
        for deploy in (self.api, self.front):
            ru = deploy["spec"]["strategy"]["rollingUpdate"]
            self.assertEqual(ru["maxUnavailable"], 0)
            self.assertEqual(ru["maxSurge"], 1)
            self.assertGreater(deploy["spec"]["minReadySeconds"], 0)

    def test_replicas_on_different_nodes(self):
        # A hard spread by hostname: two replicas on one node would both go with it. Tainted
        # nodes (cordoned, unreachable) must not count, or their pods could not be replaced on
        # the nodes left. No minDomains and no required anti-affinity: one node runs them all.
        for deploy in (self.api, self.front):
            spec = pod_spec(deploy)
            (tsc,) = spec["topologySpreadConstraints"]
            self.assertEqual(tsc["topologyKey"], "kubernetes.io/hostname")
            self.assertEqual(tsc["maxSkew"], 1)
            self.assertEqual(tsc["whenUnsatisfiable"], "DoNotSchedule")
            self.assertEqual(tsc["nodeTaintsPolicy"], "Honor")
            self.assertEqual(tsc["labelSelector"]["matchLabels"], deploy["spec"]["selector"]["matchLabels"])
            self.assertEqual(tsc["matchLabelKeys"], ["pod-template-hash"], "a rollout's surge pod must not be blocked")
            self.assertNotIn("minDomains", tsc)
            self.assertNotIn("podAntiAffinity", spec.get("affinity", {}))

    def test_api_grace_period_arithmetic(self):
        spec = pod_spec(self.api)
        (c,) = spec["containers"]
        env = env_of(c)
        total = (c["lifecycle"]["preStop"]["sleep"]["seconds"]
                 + int(env["DATAPRESS_DRAIN_SECONDS"]) + int(env["DATAPRESS_SHUTDOWN_TIMEOUT_SECONDS"]))
        self.assertLess(total, spec["terminationGracePeriodSeconds"])

    def test_front_grace_period(self):
        spec = pod_spec(self.front)
        (c,) = spec["containers"]
        self.assertLess(c["lifecycle"]["preStop"]["sleep"]["seconds"], spec["terminationGracePeriodSeconds"])

    def test_api_probes_match_the_api(self):
        (c,) = pod_spec(self.api)["containers"]
        port = contract_port("api", "DATAPRESS_LISTEN")
        expected = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
        for probe, path in expected.items():
            get = c[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertEqual(container_port(c, get["port"]), port, probe)
        # The API's router (api/src/routes.rs, service()) really serves them, and the front
        # proxies /api/health to /health.
        for path in ("health", "ready"):
            self.assertRegex(api_router(), rf'\.push\(get\("{path}",', f"the API's router has no {path} route")
        self.assertIn("/health;", NGINX_CONF)

    def test_front_probes_match_nginx(self):
        (c,) = pod_spec(self.front)["containers"]
        port = contract_port("front")
        self.assertRegex(NGINX_CONF, rf"listen {port}\b")
        self.assertRegex(NGINX_CONF, r"location = /healthz\b")
        self.assertRegex(NGINX_CONF, r"location = /readyz\b")
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertEqual(container_port(c, get["port"]), port, probe)

    def test_api_service(self):
        svc = find(self.objs, "Service", "datapress-api")
        (c,) = pod_spec(self.api)["containers"]
        self.assertEqual(svc["spec"].get("type", "ClusterIP"), "ClusterIP")
        self.assertEqual(svc["spec"]["selector"], {"app.kubernetes.io/name": "datapress-api"})
        (port,) = svc["spec"]["ports"]
        self.assertEqual(port["port"], 80)
        self.assertIsInstance(port["targetPort"], str, "a named target port")
        self.assertEqual(container_port(c, port["targetPort"]), contract_port("api", "DATAPRESS_LISTEN"))
        metrics = contract_port("api", "DATAPRESS_METRICS_LISTEN")
        self.assertNotIn(metrics, [container_port(c, p["targetPort"]) for p in svc["spec"]["ports"]])

    def test_front_service(self):
        svc = find(self.objs, "Service", "datapress-front")
        (c,) = pod_spec(self.front)["containers"]
        self.assertEqual(svc["spec"]["type"], "NodePort")
        (port,) = svc["spec"]["ports"]
        self.assertEqual(port["nodePort"], self.node_port)
        self.assertEqual(container_port(c, port["targetPort"]), contract_port("front"))

    def test_config_and_secret_reach_the_api(self):
        spec = pod_spec(self.api)
        (c,) = spec["containers"]
        cm = find(self.objs, "ConfigMap", "datapress-config")
        secret = find(self.objs, "Secret", "datapress-secret")
        # Generated names carry a content hash, and the Deployment points at the hashed name.
        for obj in (cm, secret):
            self.assertRegex(obj["metadata"]["name"], r"-[a-z0-9]{10}$")
        self.assertIn({"configMapRef": {"name": cm["metadata"]["name"]}}, c["envFrom"])
        self.assertTrue(set(cm["data"]) <= API_ENV, set(cm["data"]) - API_ENV)
        self.assertTrue(set(env_of(c)) <= API_ENV, set(env_of(c)) - API_ENV)
        self.assertEqual(cm["data"]["APP_ENV"], self.name)
        self.assertIn("APP_BANNER", cm["data"])
        # The password: a file from the immutable Secret, named by DB_PASSWORD_FILE.
        self.assertIs(secret.get("immutable"), True)
        self.assertEqual(set(secret["data"]), {"DB_PASSWORD"})
        self.assertNotIn("DB_PASSWORD", env_of(c), "the password is a file, not an env value")
        path = env_of(c)["DB_PASSWORD_FILE"]
        vol = next(v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret["metadata"]["name"])
        mount = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
        self.assertTrue(mount.get("readOnly"))
        item = next(i for i in vol["secret"]["items"] if i["key"] == "DB_PASSWORD")
        self.assertEqual(path, f"{mount['mountPath']}/{item['path']}")
        # The value is fake and says so.
        self.assertIn("FAKE", base64.b64decode(secret["data"]["DB_PASSWORD"]).decode())
        self.assertTrue({"APP_ENV", "APP_BANNER", "DB_PASSWORD", "DB_PASSWORD_FILE"} <= API_ENV)

    def test_front_upstream_configmap(self):
        spec = pod_spec(self.front)
        (c,) = spec["containers"]
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/nginx/upstream.d")
        vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        cm = find(self.objs, "ConfigMap", "datapress-front-upstream")
        self.assertEqual(vol["configMap"]["name"], cm["metadata"]["name"])
        self.assertTrue(mount.get("readOnly"))
        (fname,) = cm["data"]
        self.assertTrue(fname.endswith(".conf"))
        self.assertIn("include /etc/nginx/upstream.d/*.conf;", NGINX_CONF)
        conf = cm["data"][fname]
        # Reaches the API Service on its port, and defines the variable nginx.conf proxies to.
        svc = find(self.objs, "Service", "datapress-api")
        self.assertRegex(conf, rf"server {svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}\b")
        self.assertIn("proxy_pass http://$datapress_api/", NGINX_CONF)
        self.assertRegex(conf, r"map \$host \$datapress_api\b")
        # Same text as the front's documented Kubernetes example.
        example = ROOT / "front/nginx/upstream.d/kubernetes.conf.example"
        self.assertEqual(conf, example.read_text(), "kustomize/base/front-upstream.conf drifted from the front's example")

    def test_network_policies(self):
        nps = {np["metadata"]["name"]: np["spec"] for np in find(self.objs, "NetworkPolicy")}
        api_sel = {"matchLabels": {"app.kubernetes.io/name": "datapress-api"}}
        front_sel = {"matchLabels": {"app.kubernetes.io/name": "datapress-front"}}
        api_port = contract_port("api", "DATAPRESS_LISTEN")
        metrics_port = contract_port("api", "DATAPRESS_METRICS_LISTEN")
        front_port = contract_port("front")
        tcp = lambda p: [{"port": p, "protocol": "TCP"}]
        # Default deny, both directions, every pod.
        self.assertEqual(nps["default-deny"], {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        # DNS egress from every pod to the cluster DNS only.
        dns = nps["allow-dns-egress"]
        self.assertEqual(dns["podSelector"], {})
        self.assertEqual(dns["policyTypes"], ["Egress"])
        (rule,) = dns["egress"]
        self.assertEqual(sorted(p["protocol"] for p in rule["ports"]), ["TCP", "UDP"])
        self.assertTrue(all(p["port"] == 53 for p in rule["ports"]))
        (peer,) = rule["to"]
        self.assertEqual(peer["namespaceSelector"]["matchLabels"], {"kubernetes.io/metadata.name": "kube-system"})
        # Front: ingress 8080 from anywhere, egress to the API pods' port only.
        front = nps["datapress-front"]
        self.assertEqual(front["podSelector"], front_sel)
        self.assertEqual(front["ingress"], [{"ports": tcp(front_port)}])
        self.assertEqual(front["egress"], [{"to": [{"podSelector": api_sel}], "ports": tcp(api_port)}])
        # API: 8000 from the front pods only, 9000 from monitoring namespaces only, no egress.
        api = nps["datapress-api"]
        self.assertEqual(api["podSelector"], api_sel)
        self.assertNotIn("egress", api)
        key, value = MONITORING_LABEL
        self.assertEqual(api["ingress"], [
            {"from": [{"podSelector": front_sel}], "ports": tcp(api_port)},
            {"from": [{"namespaceSelector": {"matchLabels": {key: value}}}], "ports": tcp(metrics_port)},
        ])
        # No other policy widens this.
        self.assertEqual(set(nps), {"default-deny", "allow-dns-egress", "datapress-front", "datapress-api"})
        # Every port a policy opens is one the pod really declares.
        (api_c,) = pod_spec(self.api)["containers"]
        (front_c,) = pod_spec(self.front)["containers"]
        self.assertEqual({p["containerPort"] for p in api_c["ports"]}, {api_port, metrics_port})
        self.assertEqual({p["containerPort"] for p in front_c["ports"]}, {front_port})

    def test_what_the_cluster_would_refuse_or_get_wrong(self):
        for check in CHECKS:
            with self.subTest(check=check.__name__):
                self.assertEqual(check(self.objs), [])

    def test_checkov_exceptions_have_reasons(self):
        for obj in self.objs:
            for key, value in obj["metadata"].get("annotations", {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    self.assertRegex(check, r"^CKV2?_K8S_\d+$")
                    self.assertGreater(len(reason.split()), 3, f"{key} on {obj['metadata']['name']} needs a reason")


class Recette(Overlay, unittest.TestCase):
    name = "recette"
    expected_tag = WORKSPACE_VERSION
    digest_allowed = True
    image_name = staticmethod(release_name)
    node_port = 30080

    def test_replicas(self):
        self.assertEqual(self.api["spec"]["replicas"], 2)
        self.assertEqual(self.front["spec"]["replicas"], 2, "one front replica is a single point of failure")

    def test_pdbs(self):
        for deploy in (self.api, self.front):
            pdb = find(self.objs, "PodDisruptionBudget", deploy["metadata"]["name"])
            self.assertEqual(pdb["spec"]["minAvailable"], 1)
            self.assertEqual(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow", "a broken pod must not block a drain")
            self.assertEqual(pdb["spec"]["selector"], deploy["spec"]["selector"])
            self.assertGreater(deploy["spec"]["replicas"], pdb["spec"]["minAvailable"], "a drain must stay possible")

    def test_pods_leave_a_lost_node_quickly(self):
        # Replaced 10 s after their node is declared lost, not after the default 300 s.
        for deploy in (self.api, self.front):
            tolerations = {t["key"]: t for t in pod_spec(deploy).get("tolerations", [])}
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
                self.assertIn(key, tolerations, f"{deploy['metadata']['name']}: no toleration for {key}")
                self.assertEqual(tolerations[key]["effect"], "NoExecute")
                self.assertLessEqual(tolerations[key]["tolerationSeconds"], 30)

    def test_quota_and_limits_exist(self):
        # Their arithmetic is cluster_rules.check_quota's and check_limit_range's.
        hard = find(self.objs, "ResourceQuota", "datapress-quota")["spec"]["hard"]
        find(self.objs, "LimitRange", "datapress-limits")
        self.assertNotIn("limits.cpu", hard, "the pods set no CPU limit on purpose")
        self.assertEqual(int(hard["services.nodeports"]), 1)

    def test_ci_digest_override_on_a_copy(self):
        # A throw-away kustomization on top of the overlay pins digests of another registry.
        digest = "sha256:" + "0" * 64
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUSTOMIZE / "overlays/recette", tmp)],
                "images": [{"name": release_name(k), "newName": f"registry.example/datapress/{CONTRACT['images'][k]['name']}", "digest": digest}
                           for k in ("api", "front")],
            }))
            out = subprocess.run([KUBECTL, "kustomize", tmp], check=True, capture_output=True, text=True).stdout
        objs = [d for d in yaml.safe_load_all(out) if d]
        images = sorted(c["image"] for d in find(objs, "Deployment") for c in pod_spec(d)["containers"])
        self.assertEqual(images, [f"registry.example/datapress/{CONTRACT['images'][k]['name']}@{digest}" for k in ("api", "front")])


class LocalRecette(unittest.TestCase):
    """hack/cluster/recette: recette's application exactly, with the local images."""

    def test_only_the_images_differ(self):
        def without_images(objs):
            objs = copy.deepcopy(objs)
            images = set()
            for d in find(objs, "Deployment"):
                for c in containers(pod_spec(d)):
                    images.add(c.pop("image"))
            return objs, images
        local, local_images = without_images(load("recette-local"))
        recette, _ = without_images(load("recette-overlays"))
        self.assertEqual(local, recette)
        self.assertEqual(local_images, {f"{CONTRACT['images'][k]['name']}:{WORKSPACE_VERSION}" for k in CONTRACT["images"]})


class Dev(Overlay, unittest.TestCase):
    name = "dev"
    expected_tag = "dev"
    digest_allowed = False
    image_name = staticmethod(lambda key: CONTRACT["images"][key]["name"])
    # NodePorts are cluster-wide: dev must not take recette's.
    node_port = 30081

    def test_one_replica_each_and_debug_logs(self):
        self.assertEqual(self.api["spec"]["replicas"], 1)
        self.assertEqual(self.front["spec"]["replicas"], 1)
        cm = find(self.objs, "ConfigMap", "datapress-config")
        self.assertEqual(cm["data"]["RUST_LOG"], "debug")

    def test_no_budget_that_blocks_drains(self):
        self.assertEqual(find(self.objs, "PodDisruptionBudget"), [])



def network_paths(objs):
    return cluster_rules.check_network_paths(objs, contract_port("api", "DATAPRESS_LISTEN"),
                                             contract_port("api", "DATAPRESS_METRICS_LISTEN"), contract_port("front"))


# What kustomize/tests/cluster_rules.py checks on each overlay.
CHECKS = [cluster_rules.check_selectors, cluster_rules.check_topology_spread, cluster_rules.check_limit_range,
          cluster_rules.check_quota, cluster_rules.check_mounted_files, network_paths]


def spec_of(objs, kind, name):
    return find(objs, kind, name)["spec"]


def dns_rule(objs):
    (rule,) = spec_of(objs, "NetworkPolicy", "allow-dns-egress")["egress"]
    return rule


def without(objs, kind, name):
    objs[:] = [o for o in objs if not (o["kind"] == kind and o["metadata"]["name"] == name)]


def set_quota(key, value):
    return lambda objs: spec_of(objs, "ResourceQuota", "datapress-quota")["hard"].update({key: value})


# Each breakage section 4 of issue 19 lists, applied to the recette render: (what, change, the
# problem its check must report). The quota sizes fit every replica, not their rollout surge.
BREAKAGES = [
    ("Service selector matches no pod template",
     lambda o: spec_of(o, "Service", "datapress-api")["selector"].update({"app.kubernetes.io/name": "datapress-apj"}),
     "Service datapress-api selects no pod template"),
    ("Deployment selector matches no pod template",
     lambda o: spec_of(o, "Deployment", "datapress-front")["selector"]["matchLabels"].update(
         {"app.kubernetes.io/name": "datapress-frontend"}),
     "Deployment datapress-front: its selector does not match its pod template"),
    ("DNS egress: pod selector mistyped",
     lambda o: dns_rule(o)["to"][0]["podSelector"]["matchLabels"].update({"k8s-app": "kube-dsn"}),
     "API -> kube-dns 53/UDP: allowed expected, denied"),
    ("DNS egress: namespace selector mistyped",
     lambda o: dns_rule(o)["to"][0]["namespaceSelector"]["matchLabels"].update(
         {"kubernetes.io/metadata.name": "kube-sytem"}),
     "front -> kube-dns 53/TCP: allowed expected, denied"),
    ("DNS egress: peer removed (port 53 open to anywhere)",
     lambda o: dns_rule(o).pop("to"),
     "API -> 203.0.113.10 53/UDP: denied expected, allowed"),
    ("DNS egress: namespace selector removed (kube-dns looked for in our namespace)",
     lambda o: dns_rule(o)["to"][0].pop("namespaceSelector"),
     "API -> kube-dns 53/UDP: allowed expected, denied"),
    ("DNS egress policy removed",
     lambda o: without(o, "NetworkPolicy", "allow-dns-egress"),
     "front -> kube-dns 53/UDP: allowed expected, denied"),
    ("topologySpreadConstraints empty",
     lambda o: pod_spec(find(o, "Deployment", "datapress-api")).update({"topologySpreadConstraints": []}),
     "datapress-api: no topologySpreadConstraint over kubernetes.io/hostname"),
    ("topologySpreadConstraints select nothing",
     lambda o: pod_spec(find(o, "Deployment", "datapress-front"))["topologySpreadConstraints"][0]["labelSelector"][
         "matchLabels"].update({"app.kubernetes.io/name": "datapress-fornt"}),
     "datapress-front: a topologySpreadConstraint selects none of its own pods"),
    ("LimitRange max below a container's limit",
     lambda o: spec_of(o, "LimitRange", "datapress-limits")["limits"][0]["max"].update({"memory": "100Mi"}),
     "datapress-api/api: memory limit 128Mi above the LimitRange datapress-limits max 100Mi"),
    ("ResourceQuota pods: 4 replicas fit, not their 2 surge pods",
     set_quota("pods", "5"), "pods 6 needed (every replica plus its rollout surge), 5 allowed"),
    ("ResourceQuota requests.memory: replicas fit (96Mi), not the surge (144Mi)",
     set_quota("requests.memory", "128Mi"), "requests.memory 144Mi needed"),
    ("ResourceQuota requests.ephemeral-storage: replicas fit (64Mi), not the surge (96Mi)",
     set_quota("requests.ephemeral-storage", "80Mi"), "requests.ephemeral-storage 96Mi needed"),
    ("ResourceQuota limits.memory: replicas fit (384Mi), not the surge (576Mi)",
     set_quota("limits.memory", "512Mi"), "limits.memory 576Mi needed"),
    ("ResourceQuota limits.cpu: the pods set no CPU limit",
     set_quota("limits.cpu", "4"), "datapress-api/api sets no cpu limit (its pods are refused)"),
    ("fsGroup removed: the 0440 secret file is root's",
     lambda o: pod_spec(find(o, "Deployment", "datapress-api"))["securityContext"].pop("fsGroup"),
     "datapress-api/api: /run/secrets/datapress/db-password is mode 0440 owned by 0:0, unreadable by uid 65532"),
    ("secret item names a key the Secret lacks",
     lambda o: next(v for v in pod_spec(find(o, "Deployment", "datapress-api"))["volumes"] if "secret" in v)[
         "secret"]["items"][0].update({"key": "DB_PASS"}),
     "has no key 'DB_PASS' (the kubelet cannot mount it)"),
]


class Breakages(unittest.TestCase):
    """Each breakage, applied in memory to the recette render, is reported by its check."""

    def test_each_breakage_is_reported(self):
        base = load("recette")
        for what, change, expected in BREAKAGES:
            with self.subTest(breakage=what):
                objs = copy.deepcopy(base)
                change(objs)
                problems = [p for check in CHECKS for p in check(objs)]
                self.assertTrue(any(expected in p for p in problems),
                                f"{what}: expected a problem with {expected!r}, got {problems}")
                print(f"  {what}: {next(p for p in problems if expected in p)}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
