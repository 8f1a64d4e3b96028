"""What the API server, the controllers and the kubelet would do with a rendered overlay,
as far as a file can tell: each check takes the overlay's objects and returns its problems
(an empty list when the cluster would run it as meant). test_manifests.py runs them on the
real renders, and breaks those renders in memory to prove each check reports its breakage.
"""

import ipaddress
import math
import re
from fractions import Fraction

# kubeadm's CoreDNS addon (hack/cluster/up.sh, kind) runs in kube-system with this label.
DNS_NAMESPACE, DNS_LABELS = "kube-system", {"k8s-app": "kube-dns"}
MONITORING_LABEL = ("datapress.io/monitoring", "true")
# Every namespace gets this ConfigMap from the API server: it counts in a configmaps quota.
AUTO_CONFIGMAPS = 1
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


# --- Quantities and selectors

def quantity(q):
    """A Kubernetes quantity ("50m", "32Mi", "1e3", 2) as an exact Fraction."""
    m = re.fullmatch(r"([+-]?[0-9]*\.?[0-9]+)(?:[eE]([+-]?[0-9]+))?([KMGTPE]i|[numkMGTPE])?", str(q))
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {q!r}")
    number, exponent, suffix = m.groups()
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    decimal = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": 10**3,
               "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
    value = Fraction(number) * Fraction(10) ** int(exponent or 0)
    return value * (binary.get(suffix) or decimal.get(suffix) or 1)


def show(value, resource):
    """A quantity back in a readable unit: CPU in millicores, sizes in Mi, counts as is."""
    if resource.endswith("cpu"):
        return f"{float(value * 1000):g}m"
    if resource.endswith(("memory", "storage")):
        return f"{float(value / 2**20):g}Mi"
    return f"{float(value):g}"


def selects(selector, labels):
    """A LabelSelector against a label set: nil selects nothing, {} selects everything."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        present = key in labels
        if ((op == "In" and not (present and labels[key] in values))
                or (op == "NotIn" and present and labels[key] in values)
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present)):
            return False
    return True


# --- The objects

def of_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def name_of(obj):
    return obj["metadata"]["name"]


def workloads(objs):
    return [o for o in objs if o["kind"] in POD_KINDS]


def template_labels(workload):
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def all_containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def namespace_of(objs):
    (ns,) = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
    return ns


def namespace_labels(objs, ns):
    """The namespace's labels, with the one the API server always adds."""
    declared = next((o["metadata"].get("labels", {}) for o in of_kind(objs, "Namespace") if name_of(o) == ns), {})
    return {**declared, "kubernetes.io/metadata.name": ns}


# --- Selectors: Deployments, Services, budgets and policies must select the pods they mean

def check_selectors(objs):
    problems = []
    pods = [(name_of(w), template_labels(w), w) for w in workloads(objs)]
    for name, labels, w in pods:
        selector = w["spec"].get("selector")
        if not selector or not selects(selector, labels):
            problems.append(f"{w['kind']} {name}: its selector does not match its pod template "
                            "(the API server refuses it)")
        others = [n for n, other_labels, _ in pods if n != name and selector and selects(selector, other_labels)]
        if others:
            problems.append(f"{w['kind']} {name}: its selector also selects the pods of {others}")
    for svc in of_kind(objs, "Service"):
        selector = svc["spec"].get("selector")
        if not selector:
            continue  # no selector: endpoints managed by hand
        hits = [w for n, labels, w in pods if all(labels.get(k) == v for k, v in selector.items())]
        if not hits:
            problems.append(f"Service {name_of(svc)} selects no pod template: {selector}")
        for w in hits:
            named = {p["name"] for c in pod_spec(w)["containers"] for p in c.get("ports", []) if "name" in p}
            for port in svc["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                if isinstance(target, str) and target not in named:
                    problems.append(f"Service {name_of(svc)}: targetPort {target!r} is no port of {name_of(w)}")
    for pdb in of_kind(objs, "PodDisruptionBudget"):
        hits = [n for n, labels, _ in pods if selects(pdb["spec"].get("selector"), labels)]
        if len(hits) != 1:
            problems.append(f"PodDisruptionBudget {name_of(pdb)} covers {hits or 'no pod template'}, not one workload")
    for np in of_kind(objs, "NetworkPolicy"):
        selector = np["spec"].get("podSelector")
        if selector and not any(selects(selector, labels) for _, labels, _ in pods):
            problems.append(f"NetworkPolicy {name_of(np)} selects no pod: {selector}")
    return problems


# --- Scheduling: every workload spreads its own pods over nodes

def check_topology_spread(objs):
    problems = []
    for w in workloads(objs):
        name, labels = name_of(w), template_labels(w)
        constraints = pod_spec(w).get("topologySpreadConstraints") or []
        if not any(c.get("topologyKey") == "kubernetes.io/hostname" for c in constraints):
            problems.append(f"{name}: no topologySpreadConstraint over kubernetes.io/hostname")
        for c in constraints:
            if not selects(c.get("labelSelector"), labels):
                problems.append(f"{name}: a topologySpreadConstraint selects none of its own pods "
                                f"({c.get('labelSelector')}): it spreads nothing")
            missing = [k for k in c.get("matchLabelKeys", []) if k != "pod-template-hash" and k not in labels]
            if missing:
                problems.append(f"{name}: matchLabelKeys {missing} are not labels of its pods")
    return problems


# --- Resources: LimitRange defaults and bounds, and the quota during a rolling update

def limit_ranges(objs, kind="Container"):
    return [(name_of(lr), item) for lr in of_kind(objs, "LimitRange") for item in lr["spec"]["limits"]
            if item["type"] == kind]


def effective_resources(container, objs):
    """requests and limits after admission: LimitRange defaults fill what the container omits,
    and a missing request takes the limit's value."""
    limits = {r: quantity(v) for r, v in container.get("resources", {}).get("limits", {}).items()}
    requests = {r: quantity(v) for r, v in container.get("resources", {}).get("requests", {}).items()}
    for _, item in limit_ranges(objs):
        for r, v in item.get("default", {}).items():
            limits.setdefault(r, quantity(v))
        for r, v in item.get("defaultRequest", {}).items():
            requests.setdefault(r, quantity(v))
    for r, v in limits.items():
        requests.setdefault(r, v)
    return requests, limits


def check_limit_range(objs):
    problems = []
    for lr, item in limit_ranges(objs):
        for w in workloads(objs):
            for c in all_containers(pod_spec(w)):
                requests, limits = effective_resources(c, objs)
                who = f"{name_of(w)}/{c['name']}"
                for r, v in item.get("max", {}).items():
                    if r not in limits:
                        problems.append(f"{who}: no {r} limit, LimitRange {lr} sets a max (the pod is refused)")
                    elif limits[r] > quantity(v):
                        problems.append(f"{who}: {r} limit {show(limits[r], r)} above the LimitRange {lr} max {v}")
                for r, v in item.get("min", {}).items():
                    if requests.get(r, 0) < quantity(v):
                        problems.append(f"{who}: {r} request below the LimitRange {lr} min {v}")
                for r, v in item.get("maxLimitRequestRatio", {}).items():
                    if r in limits and requests.get(r) and limits[r] / requests[r] > quantity(v):
                        problems.append(f"{who}: {r} limit/request above the LimitRange {lr} ratio {v}")
                for r in set(requests) & set(limits):
                    if requests[r] > limits[r]:
                        problems.append(f"{who}: {r} request above its limit")
    return problems


def rollout_pods(w):
    """Pods of a Deployment at the peak of a rolling update: its replicas plus the surge."""
    replicas = w["spec"].get("replicas", 1)
    if w["kind"] != "Deployment":
        return replicas
    surge = (w["spec"].get("strategy", {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        surge = math.ceil(replicas * int(surge[:-1]) / 100)
    return replicas + int(surge)


COMPUTE = re.compile(r"^(requests\.|limits\.)?(cpu|memory|ephemeral-storage|hugepages-.+)$")


def pod_resources(spec, objs):
    """A pod's requests and limits as the quota counts them: its containers' sum, or its
    largest init container when that is more."""
    total = {"requests": {}, "limits": {}}
    init = {"requests": {}, "limits": {}}
    for c in spec["containers"]:
        for kind, values in zip(("requests", "limits"), effective_resources(c, objs)):
            for r, v in values.items():
                total[kind][r] = total[kind].get(r, 0) + v
    for c in spec.get("initContainers", []):
        for kind, values in zip(("requests", "limits"), effective_resources(c, objs)):
            for r, v in values.items():
                init[kind][r] = max(init[kind].get(r, 0), v)
    return {k: {r: max(total[k].get(r, 0), init[k].get(r, 0)) for r in total[k].keys() | init[k].keys()}
            for k in total}


def check_quota(objs):
    problems = []
    services = of_kind(objs, "Service")
    used = {
        "services": len(services),
        "services.nodeports": sum(len(s["spec"].get("ports", [])) for s in services
                                  if s["spec"].get("type") in ("NodePort", "LoadBalancer")),
        "services.loadbalancers": sum(s["spec"].get("type") == "LoadBalancer" for s in services),
        "configmaps": len(of_kind(objs, "ConfigMap")) + AUTO_CONFIGMAPS,
        "secrets": len(of_kind(objs, "Secret")),
        "persistentvolumeclaims": len(of_kind(objs, "PersistentVolumeClaim")),
        "pods": sum(rollout_pods(w) for w in workloads(objs)),
    }
    for quota in of_kind(objs, "ResourceQuota"):
        hard = quota["spec"]["hard"]
        for key in hard:
            m = COMPUTE.match(key)
            if not m:
                continue
            kind, resource = ("limits" if m.group(1) == "limits." else "requests"), m.group(2)
            used[key] = 0
            for w in workloads(objs):
                spec = pod_spec(w)
                for c in all_containers(spec):
                    requests, limits = effective_resources(c, objs)
                    if resource not in (limits if kind == "limits" else requests):
                        problems.append(f"ResourceQuota {name_of(quota)} limits {key}: {name_of(w)}/{c['name']} "
                                        f"sets no {resource} {kind[:-1]} (its pods are refused)")
                used[key] += rollout_pods(w) * pod_resources(spec, objs)[kind].get(resource, 0)
        for key, value in hard.items():
            if key not in used:
                problems.append(f"ResourceQuota {name_of(quota)}: {key} is not modelled by kustomize/tests/cluster_rules.py")
            elif used[key] > quantity(value):
                problems.append(f"ResourceQuota {name_of(quota)}: {key} {show(used[key], key)} needed "
                                f"(every replica plus its rollout surge), {value} allowed")
    return problems


# --- Mounted files: the process can read the secret and config files it is given

def process_identity(spec, container):
    pod_sc, sc = spec.get("securityContext", {}), container.get("securityContext", {})
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    groups = {gid, *pod_sc.get("supplementalGroups", [])}
    if "fsGroup" in pod_sc:
        groups.add(pod_sc["fsGroup"])
    return uid, groups - {None}


def volume_files(volume, objs):
    """(path in the volume, mode, owning group) of each file the kubelet writes: root owns them,
    fsGroup (when set) becomes their group and read-only volumes get its read bit."""
    for kind, ref in (("Secret", "secret"), ("ConfigMap", "configMap")):
        if ref not in volume:
            continue
        source = volume[ref]
        name = source.get("secretName") if kind == "Secret" else source.get("name")
        obj = next((o for o in of_kind(objs, kind) if name_of(o) == name), None)
        if obj is None:
            yield None, f"{kind} {name} is not in the overlay (the pod stays in ContainerCreating)"
            continue
        keys = set(obj.get("data", {})) | set(obj.get("stringData", {})) | set(obj.get("binaryData", {}))
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(keys)]
        for item in items:
            if item["key"] not in keys:
                yield None, f"{kind} {name} has no key {item['key']!r} (the kubelet cannot mount it)"
                continue
            yield (item["path"], item.get("mode", source.get("defaultMode", 0o644))), None


def check_mounted_files(objs):
    problems = []
    for w in workloads(objs):
        spec = pod_spec(w)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        fs_group = spec.get("securityContext", {}).get("fsGroup")
        for c in all_containers(spec):
            uid, groups = process_identity(spec, c)
            for mount in c.get("volumeMounts", []):
                for file, error in volume_files(volumes[mount["name"]], objs):
                    if error:
                        problems.append(f"{name_of(w)}/{c['name']}: {error}")
                        continue
                    path, mode = file
                    owner_gid = 0 if fs_group is None else fs_group
                    if fs_group is not None:
                        mode |= 0o440
                    readable = (uid == 0 or (owner_gid in groups and mode & 0o040) or mode & 0o004)
                    if not readable:
                        problems.append(f"{name_of(w)}/{c['name']}: {mount['mountPath']}/{path} is mode {mode:04o} "
                                        f"owned by 0:{owner_gid}, unreadable by uid {uid} (groups {sorted(groups)})")
    return problems


# --- NetworkPolicies, evaluated as an enforcer would on model pods

class Pod:
    def __init__(self, what, ns=None, ns_labels=None, labels=None, ports=None, ip=None):
        self.what, self.ns, self.ns_labels, self.labels, self.ports, self.ip = what, ns, ns_labels, labels, ports or {}, ip


def model_pod(objs, name, what):
    w = next(o for o in workloads(objs) if name_of(o) == name)
    ns = namespace_of(objs)
    ports = {p["name"]: p["containerPort"] for c in pod_spec(w)["containers"] for p in c.get("ports", []) if "name" in p}
    return Pod(what, ns, namespace_labels(objs, ns), template_labels(w), ports)


def peer_matches(peer, policy_ns, other):
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = other.ip and ipaddress.ip_address(other.ip)
        return bool(ip) and ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if other.ip:
        return False
    ns_ok = other.ns == policy_ns if "namespaceSelector" not in peer else selects(peer["namespaceSelector"], other.ns_labels)
    pod_ok = "podSelector" not in peer or selects(peer["podSelector"], other.labels)
    return ns_ok and pod_ok


def port_matches(ports, port, protocol, target):
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        number = p["port"] if isinstance(p["port"], int) else target.ports.get(p["port"])
        if number is not None and number <= port <= p.get("endPort", number):
            return True
    return False


def policy_types(np):
    return np["spec"].get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in np["spec"] else [])


def side_allows(objs, pod, other, port, protocol, direction):
    """Whether the policies selecting POD let this connection out (Egress) or in (Ingress)."""
    if pod.ip or pod.ns != namespace_of(objs):
        return True  # outside the overlay: no policy of ours applies
    target = other if direction == "Egress" else pod
    field, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    policies = [np for np in of_kind(objs, "NetworkPolicy")
                if direction in policy_types(np) and selects(np["spec"].get("podSelector"), pod.labels)]
    if not policies:
        return True
    return any(
        (peers not in rule or any(peer_matches(p, pod.ns, other) for p in rule[peers]))
        and port_matches(rule.get("ports"), port, protocol, target)
        for np in policies for rule in np["spec"].get(field, []))


def allowed(objs, src, dst, port, protocol):
    return (side_allows(objs, src, dst, port, protocol, "Egress")
            and side_allows(objs, dst, src, port, protocol, "Ingress"))


def expected_paths(objs, api_port, metrics_port, front_port):
    """(source, destination, port, protocol, allowed) for the paths that define the isolation."""
    api, front = model_pod(objs, "datapress-api", "API"), model_pod(objs, "datapress-front", "front")
    ns, ns_labels = api.ns, api.ns_labels
    key, value = MONITORING_LABEL
    client = Pod("another pod of the namespace", ns, ns_labels, {"app": "client"})
    other = Pod("a pod of another namespace", "other", {"kubernetes.io/metadata.name": "other"}, {"app": "client"})
    monitoring = Pod("a monitoring pod", "monitoring", {"kubernetes.io/metadata.name": "monitoring", key: value},
                     {"app": "prometheus"})
    dns = Pod("kube-dns", DNS_NAMESPACE, {"kubernetes.io/metadata.name": DNS_NAMESPACE}, DNS_LABELS)
    system = Pod("another kube-system pod", DNS_NAMESPACE, {"kubernetes.io/metadata.name": DNS_NAMESPACE},
                 {"k8s-app": "metrics-server"})
    internet = Pod("203.0.113.10", ip="203.0.113.10")
    return [
        (front, api, api_port, "TCP", True),
        (other, api, api_port, "TCP", False),
        (client, api, api_port, "TCP", False),
        (monitoring, api, api_port, "TCP", False),
        (monitoring, api, metrics_port, "TCP", True),
        (other, api, metrics_port, "TCP", False),
        (front, api, metrics_port, "TCP", False),
        (other, front, front_port, "TCP", True),
        (internet, front, front_port, "TCP", True),
        *((src, dns, 53, proto, True) for src in (api, front) for proto in ("UDP", "TCP")),
        (api, system, 53, "UDP", False),
        (api, internet, 53, "UDP", False),
        (api, internet, 443, "TCP", False),
        (api, front, front_port, "TCP", False),
        (api, other, api_port, "TCP", False),
        (front, internet, 443, "TCP", False),
        (front, other, api_port, "TCP", False),
    ]


def check_network_paths(objs, api_port, metrics_port, front_port):
    problems = []
    for src, dst, port, protocol, expected in expected_paths(objs, api_port, metrics_port, front_port):
        got = allowed(objs, src, dst, port, protocol)
        if got != expected:
            word = {True: "allowed", False: "denied"}
            problems.append(f"{src.what} -> {dst.what} {port}/{protocol}: {word[expected]} expected, {word[got]}")
    return problems
