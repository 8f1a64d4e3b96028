# DataPress POC: the single entry point. Each target is one line calling a script that
# developers and CI both run; `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.PHONY: help bootstrap fmt check test run up down images images-repro \
        test-api test-front test-compose lint-nix lint-manifests lint-ci \
        cluster-up cluster-down cluster-smoke cluster-up-3 cluster-down-3 cluster-smoke-3 \
        cluster-test-3 e2e-k8s bench bench-smoke bench-ab \
        docs-assets docs-check slides clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

## --- Development
bootstrap: ## Link the pinned Rust toolchain (no download)
	scripts/bootstrap.sh
fmt: ## Format Rust and Nix code
	scripts/fmt.sh
check: ## Fast gate: format, clippy, unit tests, linters (< 5 min warm)
	scripts/check.sh
test: ## Everything that can run on this machine, with a summary
	scripts/test.sh
run: ## Run the API locally (http://127.0.0.1:8000)
	scripts/bootstrap.sh && DATAPRESS_LOG_FORMAT=pretty cargo run -p datapress-api

## --- Suites (each also runs inside `make test`)
test-api: ## API: unit and integration tests against the real binary
	scripts/test.sh rust
test-front: ## Front: nginx -t and the browser e2e against local NGINX + API
	scripts/test.sh front
test-compose: ## Compose: build images, compose up, e2e, hardening checks
	scripts/test.sh compose
lint-nix: ## Nix: parse, nixpkgs-fmt, deadnix, flake.lock consistency
	scripts/test.sh nix
lint-manifests: ## Kustomize: render, strict schemas, policy lint, assertions
	scripts/test.sh manifests
lint-ci: ## Workflows: actionlint, zizmor, pins and targets
	scripts/test.sh ci

## --- Local platform (Docker Compose)
images: ## Build both images offline (reproducible, distroless, non-root)
	images/build.sh
images-repro: ## Build twice from clean target dirs and compare layer digests
	images/repro.sh
up: ## Start the platform: API on :8080, front on :8081
	scripts/up.sh
down: ## Stop the platform and remove its volumes
	scripts/down.sh

## --- Kubernetes (test cluster built from upstream sources)
cluster-up: ## Start the single-node cluster (builds binaries once, cached)
	hack/cluster/up.sh
cluster-down: ## Stop the cluster and remove its state
	hack/cluster/down.sh
cluster-smoke: ## Smoke-test the cluster with the API image
	hack/cluster/smoke.sh
cluster-up-3: ## Start the three-node kind cluster (node images built offline, cached)
	hack/kind/up.sh
cluster-down-3: ## Delete the three-node cluster and restore the host
	hack/kind/down.sh
cluster-smoke-3: ## Prove the three-node cluster: nodes, images, cross-node pods, DNS, policies
	hack/kind/smoke.sh
cluster-test-3: ## Up, smoke, recette with drain and node loss, down; the host must be as before
	hack/kind/suite.sh
e2e-k8s: ## Deploy recette to the KUBECONFIG cluster and prove zero-downtime updates
	tests/e2e/k8s.sh

## --- Benchmarks and documentation
bench: ## Full benchmark: API vs NGINX, FastAPI, bare Salvo, proxy hop, glibc and musl builds
	bench/run.sh
bench-smoke: ## A few seconds of the bench harness
	bench/run.sh --smoke
bench-ab: ## Paired A/B of two API binaries at an imposed rate: make bench-ab A=path B=path
	bench/ab.sh
docs-assets: ## Regenerate docs/assets (screenshots, charts, diagrams)
	docs/tools/assets.sh
docs-check: ## Links, images, make targets and Mermaid blocks in docs/
	docs/tools/check.sh
slides: ## Render the presentation to HTML and PDF (offline)
	docs/presentation/build.sh

clean: ## Remove build outputs (keeps the tool cache)
	rm -rf build target
