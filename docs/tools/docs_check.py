#!/usr/bin/env python3
"""Checks the French docs against the repository.

- every relative link and image in README.md and docs/**/*.md resolves to a file;
- every `make <target>` the docs mention is a target of the Makefile;
- every repository path the Markdown files of the repository name in code spans (a top-level
  entry, or a path under one) exists, from the root or from the file's folder (build outputs
  excepted);
- every environment variable of the project (`DATAPRESS_*`, `DB_PASSWORD*`, `APP_ENV`,
  `E2E_*`, `BENCH_*`, `LOAD_*`) and every `datapress-*`, `allow-*`, `default-deny*` name
  (images, Kubernetes objects, namespaces) that a code span names is written in some file of the repository that is not
  Markdown: the docs cannot describe a setting or an object the code does not have;
- so is every port the docs give (`port 8080`, `NodePort 30080`, `80 → 8000`, `host:8081`
  in a code span);
- every ```mermaid block is extracted to OUTDIR (rendered by the caller).
Exit 1 with one line per problem.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_SRC = re.compile(r"""<img[^>]+src=["']([^"']+)["']""")
MAKE = re.compile(r"`make ([a-z][a-z0-9-]*)")
MERMAID = re.compile(r"```mermaid\n(.*?)```", re.S)
CODE = re.compile(r"`([^`\n]+)`")
GENERATED = {"build", "target", "result", "result-1"}


def missing_paths(md: Path, text: str) -> list[str]:
    """Code spans that name a repository path (no spaces, no placeholders) that does not exist."""
    top = {p.name for p in ROOT.iterdir()} - GENERATED
    out = []
    for span in CODE.findall(text):
        if " " in span or any(c in span for c in "*<>{}$|=,"):
            continue
        if span.split("/")[0] not in top or ("/" not in span and span not in top):
            continue
        path = re.sub(r"(:\d+(-\d+)?|#.*)$", "", span).rstrip("/")
        if not (ROOT / path).exists() and not (md.parent / path).exists():
            out.append(span)
    return out


NAME = re.compile(r"\b(?:(?:DATAPRESS|E2E|BENCH|LOAD)_[A-Z0-9_]*[A-Z0-9]|DB_PASSWORD(?:_FILE)?|APP_ENV|(?:datapress|allow|default-deny)-[a-z0-9-]*[a-z0-9]|default-deny)\b")


PORT = re.compile(r"\b(?:[Pp]orts?|NodePort)(?: TCP)? (\d{2,5})\b|(?<!\d )\b(\d{2,5}) ?→ ?(\d{2,5})\b(?! \d)")
SPAN_PORT = re.compile(r"^(?:[a-z]+://)?[\w.-]+:(\d{2,5})$")


def unknown_names(files: list[Path]) -> tuple[int, dict[str, set[str]]]:
    """How many names (settings, objects, ports) the docs give, and those found in no
    tracked non-Markdown file: {name: docs}."""
    wanted: dict[str, set[str]] = {}
    for md in files:
        text, doc = md.read_text(), str(md.relative_to(ROOT))
        for span in CODE.findall(text):
            for name in NAME.findall(span) + SPAN_PORT.findall(span):
                wanted.setdefault(name, set()).add(doc)
        for port in (p for m in PORT.findall(text) for p in m if p):
            wanted.setdefault(port, set()).add(doc)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True, check=True)
    code = []
    for f in tracked.stdout.split("\0"):
        path = ROOT / f
        if f and not f.endswith(".md") and path.is_file() and path.stat().st_size < 2_000_000:
            code.append(path.read_text(errors="replace"))
    corpus = "\n".join(code)
    return len(wanted), {n: d for n, d in wanted.items() if not re.search(rf"\b{re.escape(n)}\b", corpus)}


def markdown_files() -> list[Path]:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.md"], capture_output=True, text=True, check=True)
    return [ROOT / f for f in tracked.stdout.split() if "node_modules" not in f]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", text, re.M))


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build/docs/mermaid"
    out.mkdir(parents=True, exist_ok=True)
    targets = make_targets()
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    problems, links, blocks = [], 0, 0
    for md in files:
        text = md.read_text()
        rel = md.relative_to(ROOT)
        for target in LINK.findall(text) + HTML_SRC.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            links += 1
            path = (md.parent / target.split("#")[0]).resolve()
            if not path.exists():
                problems.append(f"{rel}: broken link or image: {target}")
        for t in MAKE.findall(text):
            if t not in targets:
                problems.append(f"{rel}: mentions `make {t}`, which the Makefile does not define")
        for i, block in enumerate(MERMAID.findall(text)):
            blocks += 1
            name = f"{str(rel).replace('/', '_')}-{i}.mmd"
            (out / name).write_text(block)
    for md in markdown_files():
        for span in missing_paths(md, md.read_text()):
            problems.append(f"{md.relative_to(ROOT)}: names `{span}`, which is not in the repository")
    names, unknown = unknown_names(markdown_files())
    for name, docs in sorted(unknown.items()):
        problems.append(f"{', '.join(sorted(docs))}: names `{name}`, which no file of the code, manifests or scripts has")
    for p in problems:
        print("FAIL", p)
    print(f"docs: {len(files)} files, {links} links and images checked, {names} settings and object names checked against the code, {blocks} mermaid blocks extracted to {out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
