#!/usr/bin/env bash
# Two kubeforge binaries side by side on the node phases (certs, kubeconfig, etcd local,
# control-plane), ECDSA-P256 so file handling is not hidden behind RSA key generation: the
# before/after of a change to how files are written. Alternates the two in one hyperfine run.
#
#   benches/compare-node-phases.sh BEFORE_BINARY AFTER_BINARY
#
# Results go to stdout and benches/results/compare-*.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
before=$(realpath "$1")
after=$(realpath "$2")
work=$(mktemp -d /var/tmp/kubeforge-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p benches/results
export KUBEFORGE_CACHE_DIR="$work/cache"
cat > "$work/config.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.0.2.10
nodeRegistration:
  name: bench-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
encryptionAlgorithm: ECDSA-P256
YAML

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
phase() { # phase BINARY ROOT PHASE SUB
    echo "$1 --root $2 init phase $3 $4 --config $work/config.yaml"
}
for which in before after; do
    binary=${!which}
    # Warm each binary's compiled-component cache and make the PKI the later phases need.
    $(phase "$binary" "$work/$which" certs all) >/dev/null
    $(phase "$binary" "$work/$which" kubeconfig all) >/dev/null
    cp -a "$work/$which/etc/kubernetes/pki" "$work/$which-pki"
done

compare() { # compare NAME PREPARE-TEMPLATE PHASE SUB (PREPARE-TEMPLATE: @ROOT@ is each root)
    local name=$1 prepare=$2 ph=$3 sub=$4
    hyperfine --warmup 3 --min-runs 30 --export-markdown "benches/results/compare-$name.md" \
        --prepare "${prepare//@ROOT@/$work/before}" -n "before: $ph $sub" "$(phase "$before" "$work/before" "$ph" "$sub")" \
        --prepare "${prepare//@ROOT@/$work/after}" -n "after: $ph $sub" "$(phase "$after" "$work/after" "$ph" "$sub")"
}
compare certs "rm -rf @ROOT@/etc/kubernetes/pki" certs all
for which in before after; do
    rm -rf "$work/$which/etc/kubernetes/pki"
    cp -a "$work/$which-pki" "$work/$which/etc/kubernetes/pki"
done
compare kubeconfig "rm -f @ROOT@/etc/kubernetes/*.conf" kubeconfig all
compare etcd "true" etcd local
compare control-plane "true" control-plane all
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
