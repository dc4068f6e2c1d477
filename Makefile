# The commands a developer and CI run. `make help` lists them.

HOST_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
ROOT ?= /tmp/kubeforge-node
CONFIG ?= examples/init.yaml
# The init phases that need a kubelet or the API server; they land with the API-phase work.
CLUSTER_PHASES := kubelet-start,wait-control-plane,upload-config,upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command

.PHONY: help node test lint testenv bench clean-node

help:
	@echo "make node     write a control-plane node (PKI, kubeconfigs, static Pods) for $(CONFIG) under ROOT=$(ROOT)"
	@echo "make test     build the test control plane (tests/testenv) and run every test"
	@echo "make lint     cargo fmt --check, clippy -D warnings (host and guests), gofmt, go vet"
	@echo "make bench    run the benchmarks recorded in BENCHMARKS.md"

node:
	cargo run --release -- --root $(ROOT) init --config $(CONFIG) --skip-phases $(CLUSTER_PHASES)

clean-node:
	rm -rf $(ROOT)

testenv:
	tests/testenv/build.sh

test: testenv
	KUBEFORGE_TESTENV_BIN=$$(tests/testenv/build.sh 2>/dev/null) cargo test --workspace
	cd guest-phases && cargo test --target $(HOST_TARGET)

lint:
	cargo fmt --all -- --check
	cd guest-phases && cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd guest-phases && cargo clippy --release -- -D warnings
	cd guest-phases && cargo clippy --target $(HOST_TARGET) --all-targets -- -D warnings
	test -z "$$(gofmt -l tests/testenv)"
	# The flags of build.sh, so vet reuses its compile cache (minutes instead of twenty).
	cd tests/testenv && CGO_ENABLED=0 go vet -trimpath .

bench:
	benches/run.sh
