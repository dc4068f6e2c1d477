#!/usr/bin/env bash
# Regenerate the golden files the tests compare kubeforge with, from the real kubeadm of every
# release kubeforge deploys (tests/testenv builds each; CI builds v1.36 and v1.37, and v1.35.4 is
# built only here, so its goldens are what CI checks v1.35 against):
#
#   tests/golden/regenerate.sh                 # every release
#   tests/golden/regenerate.sh v1.36.3         # one
#
# For each release v1.<minor> it writes, from kubeadm commands that need no cluster:
#   host/src/config/testdata/init-defaults-v1.<minor>.yaml      `config print init-defaults`
#   host/src/config/testdata/migrate/<case>/v1.<minor>.yaml
#                                 `config migrate` of <case>/input.yaml, where that kubeadm migrates
#                                 it (host/src/config/commands/tests.rs says which it refuses)
#   guest-phases/sdk/src/kubelet/testdata/kubelet-config-v1.<minor>.yaml
#   guest-phases/kube-proxy/src/testdata/kube-proxy-config-v1.<minor>.yaml
#                                 the component config of `config print init-defaults --component-configs`
#   guest-phases/control-plane/src/manifest/testdata/<case>/v1.<minor>/kube-*.yaml
#                                 `init phase control-plane all --dry-run` for <case>/kubeadm-config.yaml
#   guest-phases/etcd/src/manifest/testdata/<case>/v1.<minor>/etcd.yaml
#                                 `init phase etcd local --dry-run` for <case>/kubeadm-config.yaml
#   tests/golden/init-dry-run/v1.<minor>.yaml
#                                 every API object `kubeadm init --dry-run` of
#                                 tests/golden/init-dry-run/config.yaml would create, update or
#                                 patch, each document headed by a `# <ACTION> <resource>` comment
# with that release as kubernetesVersion (the manifests' READMEs say what node they assume).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(v1.35.4 v1.36.3 v1.37.2)
control_plane="$root/guest-phases/control-plane/src/manifest/testdata"
etcd="$root/guest-phases/etcd/src/manifest/testdata"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The last `---`-separated document of a file.
last_document() { awk '/^---$/ { doc = ""; next } { doc = doc $0 "\n" } END { printf "%s", doc }' "$1"; }

# The objects of a `kubeadm ... --dry-run` output: each block after "[dryrun] Attached object:"
# of a CREATE, UPDATE or PATCH action, up to its blank line; what differs on every run (the CA,
# a token's expiration) replaced by what it is, so that a regeneration changes only what changed.
dry_run_objects() {
	sed -E 's/^( +certificate-authority-data: ).*/\1<the CA>/; s/^(  expiration: ).*/\1<created + TTL>/' "$1" | awk '
		/^\[dryrun\] Would perform action (CREATE|UPDATE|PATCH) on resource / {
			action = $5; resource = $8; gsub(/"/, "", resource); next
		}
		/^\[dryrun\] Attached object:$/ && action != "" { printf "--- # %s %s\n", action, resource; body = 1; next }
		body && /^$/ { body = 0; action = ""; next }
		body { print }
		/^\[dryrun\] Would perform action / { action = "" }
	'
}

# kubeadm_at VERSION CONFIG [VAR=value ...] KUBEADM ARGS...: runs kubeadm on CONFIG with VERSION
# as kubernetesVersion, without the caller's proxy variables (plus the given assignments).
kubeadm_at() {
	local version="$1" config="$2"
	shift 2
	sed "s/^kubernetesVersion: .*/kubernetesVersion: $version/" "$config" >"$work/config.yaml"
	env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u NO_PROXY -u no_proxy "$@" --config "$work/config.yaml"
}

# Writes $2's files from a dry-run directory $1 (only $3, a space-separated list), atomically.
keep_files() {
	local from="$1" to="$2" name
	rm -rf "$to.tmp" && mkdir -p "$to.tmp"
	for name in $3; do
		[[ -s "$from/$name" ]] || { echo "$0: kubeadm $version wrote no $name for $to" >&2; exit 1; }
		cp "$from/$name" "$to.tmp/$name"
	done
	rm -rf "$to" && mv "$to.tmp" "$to"
}

for version in "${versions[@]}"; do
	[[ "$version" =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "$0: '$version' is not a release such as v1.36.3" >&2; exit 2; }
	minor="v1.${BASH_REMATCH[1]}"
	bin="$("$root/tests/testenv/build.sh" "$version")"
	echo "regenerate.sh: $version ($bin/kubeadm)" >&2

	"$bin/kubeadm" config print init-defaults >"$work/out"
	mv "$work/out" "$root/host/src/config/testdata/init-defaults-$minor.yaml"
	for case_dir in "$root"/host/src/config/testdata/migrate/*/; do
		case="$(basename "$case_dir")"
		sed "s/^kubernetesVersion: .*/kubernetesVersion: $version/" "$case_dir/input.yaml" >"$work/old.yaml"
		experimental=()
		[[ "$case" == v1 ]] && experimental=(--allow-experimental-api)
		if "$bin/kubeadm" config migrate --old-config "$work/old.yaml" "${experimental[@]}" >"$work/out" 2>"$work/log"; then
			mv "$work/out" "$case_dir$minor.yaml"
		else
			rm -f "$case_dir$minor.yaml"
			echo "regenerate.sh: kubeadm $version does not migrate $case: $(grep '^error:' "$work/log")" >&2
		fi
	done
	"$bin/kubeadm" config print init-defaults --component-configs KubeletConfiguration >"$work/out"
	last_document "$work/out" >"$root/guest-phases/sdk/src/kubelet/testdata/kubelet-config-$minor.yaml"
	"$bin/kubeadm" config print init-defaults --component-configs KubeProxyConfiguration >"$work/out"
	last_document "$work/out" >"$root/guest-phases/kube-proxy/src/testdata/kube-proxy-config-$minor.yaml"

	for case_dir in "$control_plane"/*/; do
		case="$(basename "$case_dir")"
		extra_env=()
		[[ "$case" == custom ]] && extra_env=(HTTPS_PROXY=http://proxy:3128 no_proxy=10.0.0.0/8,.example.com http_proxy=)
		rm -rf "$work/dry" && mkdir "$work/dry"
		kubeadm_at "$version" "$case_dir/kubeadm-config.yaml" KUBEADM_INIT_DRYRUN_DIR="$work/dry" "${extra_env[@]}" \
			"$bin/kubeadm" init phase control-plane all --dry-run >/dev/null
		keep_files "$work/dry" "$case_dir$minor" "kube-apiserver.yaml kube-controller-manager.yaml kube-scheduler.yaml"
	done

	for case_dir in "$etcd"/*/; do
		rm -rf "$work/dry" && mkdir "$work/dry"
		kubeadm_at "$version" "$case_dir/kubeadm-config.yaml" KUBEADM_INIT_DRYRUN_DIR="$work/dry" \
			"$bin/kubeadm" init phase etcd local --dry-run >/dev/null
		keep_files "$work/dry" "$case_dir$minor" "etcd.yaml"
	done

	rm -rf "$work/dry" && mkdir "$work/dry"
	kubeadm_at "$version" "$root/tests/golden/init-dry-run/config.yaml" KUBEADM_INIT_DRYRUN_DIR="$work/dry" \
		"$bin/kubeadm" init --dry-run --ignore-preflight-errors=all >"$work/init.out"
	dry_run_objects "$work/init.out" >"$work/objects.yaml"
	[[ -s "$work/objects.yaml" ]] || { echo "$0: kubeadm $version init --dry-run printed no objects" >&2; exit 1; }
	mv "$work/objects.yaml" "$root/tests/golden/init-dry-run/$minor.yaml"
done
