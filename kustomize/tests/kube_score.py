"""kube-score on each rendered overlay, with the accepted findings of kube-score.accepted and
nothing else: any other finding (grade below OK) fails, and so does an accepted one that no
longer occurs. kube-score's own ignore annotations are disabled: the list is the one place.

Usage: kube_score.py KUBE_SCORE K8S_MINOR ACCEPTED OVERLAY=RENDERED.yaml...
"""

import json
import subprocess
import sys

# The optional checks that fit these manifests (the requests == limits ones do not: the pods
# are Burstable on purpose, see the Deployments).
OPTIONAL = ["container-seccomp-profile", "container-ports-check"]
# What each accepted flag hides: its check id and the words of its finding.
FLAGS = {"--ignore-container-cpu-limit": ("container-resources", "CPU limit is not set")}


def accepted(path):
    entries = []
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(" | ")]
        if len(fields) != 3 or len(fields[2].split()) < 6:
            sys.exit(f"{path}:{n}: expected 'OVERLAYS | CHECK | REASON' with a reason, got {line!r}")
        overlays, check, reason = fields
        if check.startswith("--") and check not in FLAGS:
            sys.exit(f"{path}:{n}: unknown flag {check} (known: {', '.join(FLAGS)})")
        entries.append((overlays.split(), check, reason))
    return entries


def findings(kube_score, minor, rendered, flags):
    args = [kube_score, "score", rendered, "--output-format", "json", "--kubernetes-version", minor,
            "--disable-ignore-checks-annotations", "--disable-optional-checks-annotations",
            *(a for t in OPTIONAL for a in ("--enable-optional-test", t)), *flags]
    run = subprocess.run(args, capture_output=True, text=True)
    # Exit 1 means findings; the JSON report decides. Anything else is a crash.
    if run.returncode not in (0, 1):
        sys.exit(f"kube-score failed (exit {run.returncode}): {run.stderr}")
    report = json.loads(run.stdout)
    found, ok = [], 0
    for obj in report:
        for check in obj["checks"]:
            if check["skipped"]:
                continue
            if check["grade"] >= 10:
                ok += 1
                continue
            for comment in check["comments"] or [{"summary": check["check"]["name"]}]:
                found.append((check["check"]["id"], obj["object_name"], comment["summary"]))
    if ok < 20:
        sys.exit(f"kube-score passed only {ok} checks on {rendered}: not a real run")
    return found, ok


def main(kube_score, minor, accepted_path, *targets):
    entries = accepted(accepted_path)
    failed = False
    for target in targets:
        overlay, rendered = target.split("=", 1)
        mine = [(check, reason) for overlays, check, reason in entries if overlay in overlays]
        plain, _ = findings(kube_score, minor, rendered, [])
        for check, reason in mine:
            check_id, words = FLAGS.get(check, (check, ""))
            hits = [f for f in plain if f[0] == check_id and words in f[2]]
            if not hits:
                print(f"STALE    {overlay}: {check} is accepted but kube-score no longer finds it: remove it")
                failed = True
            for _, obj, summary in hits:
                print(f"accepted {overlay}: {check_id} {obj}: {summary} ({reason})")
        flags = [a for check, _ in mine for a in ((check,) if check in FLAGS else ("--ignore-test", check))]
        left, ok = findings(kube_score, minor, rendered, flags)
        for check_id, obj, summary in left:
            print(f"FAILED   {overlay}: {check_id} {obj}: {summary}")
        failed |= bool(left)
        print(f"kube-score {overlay}: {ok} checks passed, {len(left)} findings, {len(mine)} accepted with a reason")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
