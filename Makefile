# The commands a developer and CI run. `make help` lists them.

HOST_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
ROOT ?= /tmp/kubeforge-node
CONFIG ?= examples/init.yaml
# The init phases that need a kubelet or the API server (`make node` writes only the files).
CLUSTER_PHASES := kubelet-start,wait-control-plane,upload-config,upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command

.PHONY: help setup node cluster cluster-down test lint lint-rust lint-go testenv bench soak clean-node

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
TESTENV := $(TARGET_DIR)/debug/kubeforge-testenv
CLUSTER ?= kubeforge
# The releases the test env is built for by `make test` (CI): kubeforge's default, then the one
# before it. v1.35.4 is built only by tests/golden/regenerate.sh, whose goldens CI checks v1.35
# against.
TESTENV_RELEASES := v1.37.2 v1.36.3
# The release `make cluster` runs (any kubeforge deploys and tests/testenv has a module file for).
KUBERNETES_VERSION ?= $(firstword $(TESTENV_RELEASES))
CLUSTER_CONFIG := $(TARGET_DIR)/cluster-$(KUBERNETES_VERSION).yaml

help:
	@echo "make cluster       a cluster on this machine: one real node (its own containerd and kubelet), kubeforge init on $(CONFIG), a pod network; ends with every kube-system Pod Ready"
	@echo "                   KUBERNETES_VERSION=v1.36.3 for another release (default $(KUBERNETES_VERSION))"
	@echo "make cluster-down  delete it and everything it made"
	@echo "make test          build the test env (tests/testenv) and run every test"
	@echo "make node          write a control-plane node's files (PKI, kubeconfigs, static Pods) for $(CONFIG) under ROOT=$(ROOT)"
	@echo "make lint          cargo fmt --check, clippy -D warnings (host and guests) (lint-rust), gofmt, go vet (lint-go)"
	@echo "make bench         run the benchmarks recorded in BENCHMARKS.md"
	@echo "make soak          the long runs at their full counts: the filesystem race, every fuzz target"

# What a fresh machine lacks: the wasm target the phases are built for (a rust-toolchain.toml
# does not install it where RUSTUP_AUTO_INSTALL=0) and the Debian packages the nodes run.
setup:
	@if command -v rustup >/dev/null; then rustup target add wasm32-wasip2; fi
	tests/testenv/packages.sh

node: setup
	cargo run --release -- --root $(ROOT) init --config $(CONFIG) --skip-phases $(CLUSTER_PHASES)

clean-node:
	rm -rf $(ROOT)

# `make cluster`: the test env's CLI (tests/harness, `kubeforge-testenv`) makes a cluster of one
# node — its own network, mount, UTS and PID namespaces, containerd, the real kubelet, kubeadm's
# images already imported, a pod network — and kubeforge inits it from inside, as on a machine.
cluster: setup
	cargo build -p kubeforge -p kubeforge-testenv
	@echo "building (once) or locating the test env for $(KUBERNETES_VERSION): tests/testenv/build.sh $(KUBERNETES_VERSION)"
	tests/testenv/build.sh $(KUBERNETES_VERSION) > /dev/null
	sed 's/^kubernetesVersion: .*/kubernetesVersion: $(KUBERNETES_VERSION)/' $(CONFIG) > $(CLUSTER_CONFIG)
	$(TESTENV) cluster create $(CLUSTER) --kubeforge $(TARGET_DIR)/debug/kubeforge --kubernetes-version $(KUBERNETES_VERSION)
	$(TESTENV) exec $(CLUSTER)-control-plane -- kubeforge init --config $(abspath $(CLUSTER_CONFIG))
	$(TESTENV) wait $(CLUSTER)
	@echo
	@echo "Point kubectl at it (the test env's kubectl is in the second line's directory):"
	@echo "  export KUBECONFIG=$$($(TESTENV) kubeconfig $(CLUSTER))"
	@echo "  export PATH=$$(tests/testenv/build.sh $(KUBERNETES_VERSION) 2>/dev/null):\$$PATH"
	@echo "A shell on the node: $(TESTENV) exec $(CLUSTER)-control-plane -- bash"
	@echo "Delete it and everything it made: make cluster-down"

cluster-down:
	cargo build -q -p kubeforge-testenv
	$(TESTENV) cluster delete $(CLUSTER)

testenv:
	for release in $(TESTENV_RELEASES); do tests/testenv/build.sh $$release > /dev/null || exit 1; done

# The older releases' test envs build while the default release's tests run (tests/run-all.sh).
test: setup
	tests/run-all.sh $(TESTENV_RELEASES)

lint: lint-rust lint-go

lint-rust:
	cargo fmt --all -- --check
	cd guest-phases && cargo fmt --all -- --check
	cd examples/components && cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd guest-phases && cargo clippy --release -- -D warnings
	cd guest-phases && cargo clippy --target $(HOST_TARGET) --all-targets -- -D warnings
	cd examples/components && cargo clippy --release --target wasm32-wasip2 -- -D warnings

lint-go:
	test -z "$$(gofmt -l tests/testenv)"
	# Each Go module with code of ours, with build.sh's flags so vet reuses its compile cache
	# (minutes instead of twenty); containerd/ only pins upstream's commands.
	for m in kubernetes etcd coredns pause images; do \
		(cd tests/testenv/$$m && CGO_ENABLED=0 go vet -trimpath .) || exit 1; done

bench:
	benches/run.sh

# CI runs a short seeded sample of each; these are the full counts (figures in the closing notes).
soak:
	KUBEFORGE_FS_RACE_ROUNDS=1000 cargo test -p kubeforge --test fs_race -- --nocapture
	KUBEFORGE_FUZZ_CASES=$(or $(FUZZ_CASES),200000) cargo test -p kubeforge --release --lib --test fuzz -- fuzz
