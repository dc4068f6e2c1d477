#!/usr/bin/env bash
# The API phases of init (upload-config, upload-certs, mark-control-plane, bootstrap-token,
# addon) against a real control plane on a real node of the test env (tests/harness: the node's
# own namespaces, containerd and the real kubelet, which runs the real etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler as static Pods), kubeforge side by side with the
# real kubeadm (tests/testenv). Results go to stdout and benches/results/api-phases*;
# BENCHMARKS.md quotes them.
#
#   benches/api-phases.sh              # warm and cold runs of both tools
#   KUBEFORGE_BENCH_COLD_RUNS=0 …      # warm runs only (no fresh cluster per cold run)
#   KUBEFORGE_BENCH_TOOLS=kubeforge …  # one tool only (kubeforge or kubeadm)
#   KUBEFORGE_BENCH_WARM_RUNS=N …      # at least N measured warm runs per command (default 15)
#   KUBEFORGE_BENCH_OUT=DIR …          # results to DIR instead of benches/results
#   KUBEFORGE_BENCH_BASELINE=DIR …     # also time DIR/kubeforge (e.g. a build before a change),
#                                      # paired with kubeforge on the same cluster
#
# Needs root (the test env's nodes; kubeadm reads the node's files with --rootfs, a chroot),
# hyperfine and the testenv (tests/testenv/build.sh).
#
# Each tool gets its own one-node cluster (`kubeforge-testenv cluster create`), brought up by
# `kubeforge init` inside the node with the API phases skipped (the node phases, kubelet-start:
# the real kubelet starts the static Pods and registers the Node, wait-control-plane), so the API
# objects do not exist yet. Warm runs: hyperfine's warm-up runs create the objects, the measured
# runs update them (both tools). Cold runs: every measured run of the whole sequence gets a fresh
# cluster (hyperfine --prepare; not timed), started from the same state: the API server ready
# (/readyz, RBAC bootstrapped), the Node registered.
#
# The tools run on the host, against the node: the node's root is /proc/<its supervisor's
# pid>/root (the test env's CLI does not print that pid; the script reads it from the test env's
# state, <state root>/<cluster>/cluster.json), reached through the stable symlink $work/node so
# that a fresh cluster needs no new command lines; the API server is at the node's address, which
# the host reaches. kubeforge runs with `--root $work/node`, kubeadm with `--rootfs $work/node`,
# so both use the node's admin.conf, super-admin.conf and PKI at the paths a node has. Both read
# the same config file (in the node's /etc): examples/init.yaml with the node's name and address
# (run on the host, neither tool may detect them) and a fixed bootstrap token, so that warm runs
# update one token Secret.
set -euo pipefail
cd "$(dirname "$0")/.."

phases=(upload-config upload-certs mark-control-plane bootstrap-token addon)
# Everything but the API phases, for the one-process sequence (what `init` runs of them).
sequence_skip=preflight,certs,kubeconfig,etcd,control-plane,kubelet-start,wait-control-plane,kubelet-finalize,show-join-command
# What a fresh cluster skips: the API phases (and kubelet-finalize, which is not one).
cluster_skip=upload-config,upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command
cluster=bench-api
node=$cluster-control-plane
# The config file, as the node sees it.
node_config=/etc/kubeforge-bench/kubeadm.yaml
state_root=${KUBEFORGE_TESTENV_STATE:-/var/tmp/kubeforge-testenv}

# The binaries, copied once (by the main run) so that a concurrent build cannot swap them.
kubeforge="${KUBEFORGE_BENCH_BIN:-}/kubeforge"
testenv="${KUBEFORGE_BENCH_BIN:-}/kubeforge-testenv"

# The node's host pid, from the test env's state.
node_pid() {
    python3 -c 'import json, sys
record = json.load(open(sys.argv[1]))
print(next(n["supervisor"]["pid"] for n in record["nodes"] if n["name"] == sys.argv[2]))' \
        "$state_root/$cluster/cluster.json" "$node"
}

# A fresh cluster: the node phases, kubelet-start (the kubelet runs the control plane and
# registers the Node) and wait-control-plane, then wait until the API server is ready and the
# Node and kube-public exist. Points $work/node at the node's root and writes the config.
cluster_up() { # cluster_up WORK
    local work=$1
    "$testenv" cluster create "$cluster" --kubeforge "$kubeforge" >"$work/create.log" 2>&1 ||
        { cat "$work/create.log" >&2; return 1; }
    ln -sfn "/proc/$(node_pid)/root" "$work/node"
    local address
    address=$("$testenv" nodes "$cluster" | awk -v n="$node" '$1 == n { print $3 }')
    mkdir -p "$work/node/etc/kubeforge-bench"
    sed -e "s/^kind: InitConfiguration$/kind: InitConfiguration\nbootstrapTokens:\n  - token: abcdef.0123456789abcdef\nlocalAPIEndpoint:\n  advertiseAddress: $address\nnodeRegistration:\n  name: $node/" \
        examples/init.yaml >"$work/node$node_config"
    "$testenv" exec "$node" -- kubeforge init --config "$node_config" --skip-phases "$cluster_skip" \
        >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; return 1; }
    # super-admin.conf: admin.conf is not authorised before the first API phase binds it.
    local kubectl=("$KUBEFORGE_TESTENV_BIN/kubectl" --kubeconfig "$work/node/etc/kubernetes/super-admin.conf")
    for _ in $(seq 600); do
        if [ "$("${kubectl[@]}" get --raw /readyz 2>/dev/null)" = ok ] &&
            "${kubectl[@]}" get node "$node" >/dev/null 2>&1 &&
            "${kubectl[@]}" get namespace kube-public >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "the cluster $cluster did not become ready" >&2
    return 1
}

cluster_down() {
    "$testenv" cluster delete "$cluster" >/dev/null 2>&1 || true
}

# Internal: hyperfine's --prepare for a cold run (a fresh cluster, not timed).
if [ "${1:-}" = --fresh-cluster ]; then
    export KUBEFORGE_TESTENV_BIN KUBEFORGE_BENCH_BIN
    cluster_down
    cluster_up "$2"
    exit
fi

command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root: the test env's nodes, and kubeadm --rootfs chroots" >&2; exit 1; }
export KUBEFORGE_TESTENV_BIN="${KUBEFORGE_TESTENV_BIN:-$(tests/testenv/build.sh)}"
kubeadm="$KUBEFORGE_TESTENV_BIN/kubeadm"
warm_runs=${KUBEFORGE_BENCH_WARM_RUNS:-15}
cold_runs=${KUBEFORGE_BENCH_COLD_RUNS:-3}
tools=${KUBEFORGE_BENCH_TOOLS:-"kubeforge kubeadm"}

work=$(mktemp -d /var/tmp/kubeforge-api-bench.XXXXXX)
root="$work/node"
trap 'cluster_down; rm -rf "$work"' EXIT
# KUBEFORGE_BENCH_BIN=DIR: time the kubeforge and kubeforge-testenv in DIR (e.g. a saved build,
# for a before/after comparison) instead of building this tree.
if [ -z "${KUBEFORGE_BENCH_BIN:-}" ]; then
    cargo build --release -p kubeforge -p kubeforge-testenv >&2
    target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    mkdir "$work/bin"
    cp "$target_dir/release/kubeforge" "$target_dir/release/kubeforge-testenv" "$work/bin/"
    export KUBEFORGE_BENCH_BIN="$work/bin"
    echo "kubeforge: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host api guest-phases wit || echo ' + uncommitted changes')" >&2
fi
kubeforge="$KUBEFORGE_BENCH_BIN/kubeforge"
testenv="$KUBEFORGE_BENCH_BIN/kubeforge-testenv"
echo "kubeforge binary: $kubeforge (sha256 $(sha256sum "$kubeforge" | cut -c1-12))" >&2
export KUBEFORGE_CACHE_DIR="$work/cache"
out=${KUBEFORGE_BENCH_OUT:-benches/results}
mkdir -p "$out"

command_for() { # command_for TOOL PHASE|sequence
    local tool=$1 phase=$2 args
    case $phase in
        upload-config | addon) args="init phase $phase all" ;;
        upload-certs) args="init phase upload-certs --upload-certs" ;;
        sequence) args="init --skip-phases $sequence_skip --upload-certs" ;;
        *) args="init phase $phase" ;;
    esac
    case $tool in
        kubeforge) echo "$kubeforge --root $root $args --config $root$node_config" ;;
        baseline) echo "$KUBEFORGE_BENCH_BASELINE/kubeforge --root $root $args --config $root$node_config" ;;
        kubeadm) echo "$kubeadm $args --config $node_config --rootfs $root" ;;
    esac
}

# The hyperfine commands of TOOL for PHASE: with KUBEFORGE_BENCH_BASELINE, kubeforge's runs
# are paired with the baseline kubeforge's, on the same cluster and under the same load.
commands_for() { # commands_for TOOL PHASE SUFFIX
    printf '%s\0' -n "$1 $2 $3" "$(command_for "$1" "$2")"
    if [ "$1" = kubeforge ] && [ -n "${KUBEFORGE_BENCH_BASELINE:-}" ]; then
        printf '%s\0' -n "baseline $2 $3" "$(command_for baseline "$2")"
    fi
}

load() { echo "$(date -u +%FT%TZ) $(uptime | sed 's/.*load average/load average/')"; }

for tool in $tools; do
    echo "== $tool: warm runs (fresh cluster, objects created by the warm-up runs) ==" >&2
    cluster_down
    cluster_up "$work"
    : >"$out/api-phases-load-$tool.txt"
    echo "$tool warm start: $(load)" >>"$out/api-phases-load-$tool.txt"
    for phase in "${phases[@]}" sequence; do
        mapfile -d '' commands < <(commands_for "$tool" "$phase" "(warm)")
        hyperfine -N --warmup 2 --min-runs "$warm_runs" \
            --export-json "$out/api-phases-$tool-$phase.json" "${commands[@]}"
    done
    echo "$tool warm end: $(load)" >>"$out/api-phases-load-$tool.txt"
    if [ "$cold_runs" -gt 0 ]; then
        echo "== $tool: cold runs (a fresh cluster before each run) ==" >&2
        echo "$tool cold start: $(load)" >>"$out/api-phases-load-$tool.txt"
        mapfile -d '' commands < <(commands_for "$tool" sequence "(cold)")
        hyperfine -N --runs "$cold_runs" \
            --prepare "bash $PWD/benches/api-phases.sh --fresh-cluster $work" \
            --export-json "$out/api-phases-$tool-sequence-cold.json" "${commands[@]}"
        echo "$tool cold end: $(load)" >>"$out/api-phases-load-$tool.txt"
    fi
    cluster_down
done

python3 - "$out" <<'PY' | tee "$out/api-phases.md"
import json, os, sys
out = sys.argv[1]
def result(tool, name):
    path = f"{out}/api-phases-{'kubeadm' if tool == 'kubeadm' else 'kubeforge'}-{name}.json"
    if not os.path.exists(path):
        return None
    return next((r for r in json.load(open(path))["results"] if r["command"].startswith(tool + " ")), None)
baseline = any(result("baseline", name) for name in ("upload-config", "sequence"))
def cell(r):
    if r is None:
        return "-"
    spread = f" ± {r['stddev'] * 1000:.1f}" if r.get("stddev") is not None else ""
    n = len(r["times"])
    return f"{r['mean'] * 1000:.1f} ms{spread} (median {r['median'] * 1000:.1f}, user {r['user'] * 1000:.0f}, sys {r['system'] * 1000:.0f}; {n} run{'s' if n > 1 else ''})"
rows = [("`init phase upload-config all`", "upload-config"),
        ("`init phase upload-certs --upload-certs`", "upload-certs"),
        ("`init phase mark-control-plane`", "mark-control-plane"),
        ("`init phase bootstrap-token`", "bootstrap-token"),
        ("`init phase addon all`", "addon"),
        ("the five in one process (`init --skip-phases …`), warm", "sequence"),
        ("the five in one process, cold (fresh cluster)", "sequence-cold")]
print("| phase | kubeforge | kubeadm | kubeforge / kubeadm (mean) | target ≤ 0.5 |" + (" baseline kubeforge | kubeforge / baseline |" if baseline else ""))
print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if baseline else ""))
for label, name in rows:
    kf, ka, base = result("kubeforge", name), result("kubeadm", name), result("baseline", name)
    ratio = kf["mean"] / ka["mean"] if kf and ka else None
    verdict = "-" if ratio is None else ("met" if ratio <= 0.5 else "not met")
    line = f"| {label} | {cell(kf)} | {cell(ka)} | {'-' if ratio is None else f'{ratio:.2f}'} | {verdict} |"
    if baseline:
        relative = f"{kf['mean'] / base['mean']:.2f}" if kf and base else "-"
        line += f" {cell(base)} | {relative} |"
    print(line)
PY
