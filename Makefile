# The commands a developer and CI run. `make help` lists them.

HOST_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
ROOT ?= /tmp/kubeforge-node
CONFIG ?= examples/init.yaml
# The init phases that need a kubelet or the API server; they land with the API-phase work.
CLUSTER_PHASES := kubelet-start,wait-control-plane,upload-config,upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command

.PHONY: help node cluster cluster-down test lint testenv bench clean-node

help:
	@echo "make node     write a control-plane node (PKI, kubeconfigs, static Pods) for $(CONFIG) under ROOT=$(ROOT)"
	@echo "make cluster  a single-node control plane on this machine under CLUSTER_ROOT=$(CLUSTER_ROOT): kubeforge init, the testenv's real binaries, the kubelet stand-in"
	@echo "make cluster-down  stop it and remove CLUSTER_ROOT"
	@echo "make test     build the test control plane (tests/testenv) and run every test"
	@echo "make lint     cargo fmt --check, clippy -D warnings (host and guests), gofmt, go vet"
	@echo "make bench    run the benchmarks recorded in BENCHMARKS.md"

node:
	cargo run --release -- --root $(ROOT) init --config $(CONFIG) --skip-phases $(CLUSTER_PHASES)

clean-node:
	rm -rf $(ROOT)

# `make cluster`: the kubelet stand-in (tests/harness) watches CLUSTER_ROOT's manifests and runs
# them with the testenv's real binaries; `kubeforge init` writes them and then configures the
# cluster through the API. The stand-in also plays the kubelet service: kubeforge stops, starts and
# restarts it through `kubeforge-testenv service --root CLUSTER_ROOT <action> kubelet` (its
# --service-command), and the stand-in's kubelet serves /healthz on 127.0.0.1:10248 and registers
# the Node with kubelet.conf's identity. No phase is skipped.
CLUSTER_ROOT ?= /tmp/kubeforge-cluster

cluster:
	@test ! -e $(CLUSTER_ROOT)/stand-in.pid || { echo "a cluster is already running under $(CLUSTER_ROOT): make cluster-down"; exit 1; }
	cargo build -p kubeforge -p kubeforge-testenv
	@echo "building (once) or locating the control-plane binaries: tests/testenv/build.sh"
	tests/testenv/build.sh > /dev/null
	mkdir -p $(CLUSTER_ROOT)/etc/kubernetes/manifests
	KUBEFORGE_TESTENV_BIN=$$(tests/testenv/build.sh 2>/dev/null) setsid target/debug/kubeforge-testenv run --root $(CLUSTER_ROOT) > $(CLUSTER_ROOT)/stand-in.log 2>&1 & echo $$! > $(CLUSTER_ROOT)/stand-in.pid
	target/debug/kubeforge --root $(CLUSTER_ROOT) --service-command "$(abspath target/debug/kubeforge-testenv) service --root $(CLUSTER_ROOT)" init --config $(CONFIG)
	@echo
	@echo "The control plane is up. Point kubectl at it:"
	@echo "  export KUBECONFIG=$(CLUSTER_ROOT)/etc/kubernetes/admin.conf"
	@echo "Stop it and remove everything with: make cluster-down"

cluster-down:
	@if test -e $(CLUSTER_ROOT)/stand-in.pid; then \
		pid=$$(cat $(CLUSTER_ROOT)/stand-in.pid); kill -TERM $$pid 2>/dev/null; \
		while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; fi
	rm -rf $(CLUSTER_ROOT)

testenv:
	tests/testenv/build.sh

test: testenv
	KUBEFORGE_TESTENV_BIN=$$(tests/testenv/build.sh 2>/dev/null) cargo test --workspace
	cd guest-phases && cargo test --target $(HOST_TARGET)

lint:
	cargo fmt --all -- --check
	cd guest-phases && cargo fmt --all -- --check
	cd examples/components && cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd guest-phases && cargo clippy --release -- -D warnings
	cd guest-phases && cargo clippy --target $(HOST_TARGET) --all-targets -- -D warnings
	cd examples/components && cargo clippy --release --target wasm32-wasip2 -- -D warnings
	test -z "$$(gofmt -l tests/testenv)"
	# The flags of build.sh, so vet reuses its compile cache (minutes instead of twenty).
	cd tests/testenv && CGO_ENABLED=0 go vet -trimpath .

bench:
	benches/run.sh
