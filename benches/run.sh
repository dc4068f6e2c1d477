#!/usr/bin/env bash
# Whole-process benchmarks of kubeforge's node phases, side by side with the real kubeadm
# (tests/testenv), plus the in-process phase overhead, then on real nodes of the test env: the API
# phases (benches/api-phases.sh) and the whole init (benches/init-real-node.py). Results go to
# stdout and to benches/results/*; BENCHMARKS.md quotes them.
#
# Needs root (kubeadm writes manifests to /etc/kubernetes/manifests only: the node phases run in
# a private mount namespace where /etc/kubernetes is a directory on the same disk as kubeforge's
# --root; the real-node benchmarks run outside it, as the test env's nodes need) and hyperfine
# (`apt-get install hyperfine`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${KUBEFORGE_BENCH_NAMESPACED:-}" != 1 ]; then
    command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
    cargo build --release -p kubeforge -p kubeforge-testenv >&2
    export KUBEFORGE_TESTENV_BIN="${KUBEFORGE_TESTENV_BIN:-$(tests/testenv/build.sh)}"
    KUBEFORGE_BENCH_NAMESPACED=1 unshare --mount --propagation private "$0" "$@"
    # The API phases (upload-config … addon) on a real node, side by side with kubeadm: a
    # cluster of its own per tool.
    benches/api-phases.sh
    # The whole init on a real node, kubeforge and kubeadm, to Node Ready and CoreDNS Ready.
    benches/init-real-node.py
    # The same with ECDSA-P256 keys for both tools (no RSA key generation).
    benches/init-real-node.py --algorithm ECDSA-P256
    exit
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
kubeforge="$target_dir/release/kubeforge"
kubeadm="$KUBEFORGE_TESTENV_BIN/kubeadm"
work=$(mktemp -d /var/tmp/kubeforge-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kubeadm-etc" /etc/kubernetes benches/results
mount --bind "$work/kubeadm-etc" /etc/kubernetes
export KUBEFORGE_CACHE_DIR="$work/cache"

config() { # config NAME ALGORITHM CERTDIR
    cat > "$work/$1.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  # kubeadm refuses a loopback advertise address; file phases bind nothing.
  advertiseAddress: 192.0.2.10
nodeRegistration:
  name: bench-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
encryptionAlgorithm: $2
certificatesDir: $3
YAML
}

run() { # run NAME [hyperfine args...]
    local name=$1; shift
    hyperfine --warmup 2 --min-runs 15 --export-markdown "benches/results/$name.md" "$@"
}

for algorithm in RSA-2048 ECDSA-P256; do
    tag=$(echo "$algorithm" | tr 'A-Z' 'a-z')
    config "kf-$tag" "$algorithm" /etc/kubernetes/pki
    config "ka-$tag" "$algorithm" /etc/kubernetes/pki
    kf="$kubeforge --root $work/kf init phase"
    ka="$kubeadm init phase"
    # A complete PKI for the phases that need one, made once by each tool.
    rm -rf "$work/kf" /etc/kubernetes/*
    $kf certs all --config "$work/kf-$tag.yaml" >/dev/null
    $ka certs all --config "$work/ka-$tag.yaml" >/dev/null
    cp -a "$work/kf/etc/kubernetes/pki" "$work/kf-pki-$tag"
    cp -a /etc/kubernetes/pki "$work/ka-pki-$tag"

    run "certs-$tag" \
        --prepare "rm -rf $work/kf/etc/kubernetes/pki /etc/kubernetes/pki" \
        -n "kubeforge certs all ($algorithm)" "$kf certs all --config $work/kf-$tag.yaml" \
        -n "kubeadm certs all ($algorithm)" "$ka certs all --config $work/ka-$tag.yaml"
    # The certs runs removed both PKIs; later phases need them back.
    rm -rf "$work/kf/etc/kubernetes/pki" /etc/kubernetes/pki
    cp -a "$work/kf-pki-$tag" "$work/kf/etc/kubernetes/pki"
    cp -a "$work/ka-pki-$tag" /etc/kubernetes/pki
    run "kubeconfig-$tag" \
        --prepare "rm -f $work/kf/etc/kubernetes/*.conf /etc/kubernetes/*.conf" \
        -n "kubeforge kubeconfig all ($algorithm)" "$kf kubeconfig all --config $work/kf-$tag.yaml" \
        -n "kubeadm kubeconfig all ($algorithm)" "$ka kubeconfig all --config $work/ka-$tag.yaml"
    run "manifests-$tag" \
        -n "kubeforge etcd local ($algorithm)" "$kf etcd local --config $work/kf-$tag.yaml" \
        -n "kubeadm etcd local ($algorithm)" "$ka etcd local --config $work/ka-$tag.yaml" \
        -n "kubeforge control-plane all ($algorithm)" "$kf control-plane all --config $work/kf-$tag.yaml" \
        -n "kubeadm control-plane all ($algorithm)" "$ka control-plane all --config $work/ka-$tag.yaml"
    run "four-phases-$tag" \
        --prepare "rm -rf $work/kf /etc/kubernetes/pki /etc/kubernetes/manifests /etc/kubernetes/*.conf" \
        -n "kubeforge certs+kubeconfig+etcd+control-plane ($algorithm)" \
        "$kf certs all --config $work/kf-$tag.yaml && $kf kubeconfig all --config $work/kf-$tag.yaml && $kf etcd local --config $work/kf-$tag.yaml && $kf control-plane all --config $work/kf-$tag.yaml" \
        -n "kubeadm certs+kubeconfig+etcd+control-plane ($algorithm)" \
        "$ka certs all --config $work/ka-$tag.yaml && $ka kubeconfig all --config $work/ka-$tag.yaml && $ka etcd local --config $work/ka-$tag.yaml && $ka control-plane all --config $work/ka-$tag.yaml"
done

# The first run on a machine compiles the component; later runs load it from the cache.
run "cold-cache" \
    --prepare "rm -rf $work/cache" \
    -n "kubeforge etcd local, cold artifact cache" "$kubeforge --root $work/kf init phase etcd local --config $work/kf-ecdsa-p256.yaml" \
    --prepare "true" \
    -n "kubeforge etcd local, warm artifact cache" "$kubeforge --root $work/kf init phase etcd local --config $work/kf-ecdsa-p256.yaml"

umount /etc/kubernetes

# The wasm overhead of a phase with a warm artifact cache, from the runtime's own timings:
# loading the compiled component (deserialise + link) and instantiating it plus one call.
overhead() { # overhead MESSAGE
    for _ in $(seq 50); do
        KUBEFORGE_LOG=kubeforge::runtime=debug "$kubeforge" --root "$work/kf" init phase etcd local \
            --config "$work/kf-ecdsa-p256.yaml" 2>&1 >/dev/null
    done | sed 's/\x1b\[[0-9;]*m//g' | grep "$1" | sed -n 's/.*elapsed_us=\([0-9]*\).*/\1/p' | sort -n |
        awk -v what="$1" '{ v[NR] = $1 } END { printf "%s: median %d µs, min %d µs, max %d µs (%d runs)\n", what, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
}
{
    overhead "component loaded"
    overhead "component instantiated and described"
} | tee benches/results/phase-overhead.txt
