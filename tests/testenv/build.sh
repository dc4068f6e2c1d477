#!/usr/bin/env bash
# Build kubeforge's test environment from upstream Go modules into a cache outside the
# repository, and print its bin directory as the only line on stdout. Progress goes to stderr.
#
#   bin=$(tests/testenv/build.sh)           # the default release (kubernetes/go.mod)
#   bin=$(tests/testenv/build.sh v1.36.3)   # another release with a module file here
#   "$bin/kube-apiserver" --version
#
# A module built at more than one version keeps one module file per version beside its go.mod,
# which pins the default release's: kubernetes/v1.36.mod (kubernetes/modfile.sh writes them),
# etcd/v3.6.8.mod, coredns/v1.14.2.mod. The Kubernetes release picks the kubernetes file; the
# etcd and CoreDNS files are the ones at the versions that release's kubeadm deploys (its
# constants).
#
# One Go module a directory, each built on its own so none moves another's dependencies:
#   kubernetes/  kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#                kubectl, kubeadm (one multi-call binary) and agnhost (the e2e test image)
#   etcd/        etcd and etcdctl at the version kubeadm deploys
#   containerd/  containerd, containerd-shim-runc-v2 and ctr
#   coredns/     CoreDNS at the version kubeadm deploys
#   pause/       the pod sandbox process
#   images/      the tool that writes the images below
# and then images.tar (beside bin/): an OCI layout with the images kubeadm deploys under its
# names and tags (kube-apiserver … kube-proxy, etcd, coredns, pause) plus agnhost, made from
# those binaries, for `ctr images import` into each node.
#
# Each module's cache key is a hash over `go version`, the module file and go.sum it builds with,
# its Go sources and this script's code (not its comments); a module whose
# <cache>/<module>-<key> is complete is not rebuilt, and the script
# returns at once when everything is. Concurrent invocations serialise on a lock; every output
# is built into a temporary path and renamed, so an interrupted build never leaves a half one.
#
# Environment:
#   KUBERNETES_VERSION       the release when no argument is given
#   KUBEFORGE_TESTENV_CACHE  cache root (default $HOME/.cache/kubeforge-testenv)
#   GOFLAGS, GOPROXY, ...    passed through to the go command
set -euo pipefail

log() { printf 'testenv/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null 2>&1 || die "the go toolchain is not on PATH (need Go >= 1.26.6; see $src/README.md)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"
"$src/packages.sh"

cache_root="${KUBEFORGE_TESTENV_CACHE:-${HOME:?HOME is not set}/.cache/kubeforge-testenv}"
mkdir -p "$cache_root"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -mod=readonly"
go_version="$(go version)"

# The build tags of containerd's own release builds without cgo (no btrfs, devmapper or zfs
# snapshotters); `make lint` vets with the same ones to reuse this compile cache.
containerd_tags="no_btrfs no_devmapper no_zfs"

# modfile_MODULE: the module file each module builds with (chosen below).
declare -A modfile=()
sumfile() { if [[ "$1" == go.mod ]]; then printf 'go.sum'; else printf '%s.sum' "${1%.mod}"; fi; }

module_key() {
	(
		cd "$src/$1"
		{
			printf '%s\n' "$go_version"
			grep -Ev '^[[:space:]]*#' "$src/build.sh" | sha256sum
			# The module files by content: which name a release's file has does not matter.
			sha256sum <"${modfile[$1]}"
			[[ -e "$(sumfile "${modfile[$1]}")" ]] && sha256sum <"$(sumfile "${modfile[$1]}")"
			for f in $(find . -name '*.go' -type f | LC_ALL=C sort); do
				printf '%s\n' "$f"
				sha256sum <"$f"
			done
		} | sha256sum | cut -c1-32
	)
}

# module_file MODULE PATH VERSION: the module file of MODULE that requires PATH at VERSION.
module_file() {
	local f
	for f in go.mod $(cd "$src/$1" && ls -- *.mod 2>/dev/null | grep -vx go.mod); do
		grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3\$" "$src/$1/$f" && { printf '%s' "$f"; return 0; }
	done
	return 1
}

# versions_of MODULE PATH: the versions of PATH that MODULE's module files pin.
versions_of() {
	(cd "$src/$1" && sed -En "s|^[[:space:]]*(require[[:space:]]+)?$2 (v[^ ]+)\$|\2|p" go.mod $(ls -- *.mod | grep -vx go.mod) | xargs)
}

# The names the outputs of each module get in bin/.
declare -A outputs=(
	[kubernetes]="kubernetes agnhost"
	[etcd]="etcd"
	[containerd]="containerd containerd-shim-runc-v2 ctr"
	[coredns]="coredns"
	[pause]="pause"
	[images]="images"
)

declare -A cold_note=([kubernetes]=" (a cold build takes many minutes)")

complete_dir() {
	local dir="$1" f
	shift
	for f in "$@"; do [[ -x "$dir/$f" ]] || return 1; done
}

# build_module MODULE: builds it into $cache_root/MODULE-<key> unless that is complete, and sets
# the variable dir_MODULE to it.
build_module() {
	local module="$1" key dir tmp start
	key="$(module_key "$module")"
	dir="$cache_root/$module-$key"
	printf -v "dir_$module" '%s' "$dir"
	# shellcheck disable=SC2086
	complete_dir "$dir" ${outputs[$module]} && return 0
	exec 9>"$cache_root/.build-$module.lock"
	flock -n 9 || { log "another build of $module is running; waiting for it"; flock 9; }
	# shellcheck disable=SC2086
	if complete_dir "$dir" ${outputs[$module]}; then exec 9>&-; return 0; fi
	log "$module: downloading its modules (${modfile[$module]})"
	(cd "$src/$module" && go mod download -modfile="${modfile[$module]}") || die "$module: go mod download failed (network? GOPROXY=$(go env GOPROXY))"
	tmp="$(mktemp -d "$cache_root/.tmp-$module.XXXXXX")"
	start=$SECONDS
	log "$module: go build${cold_note[$module]:-}"
	(cd "$src/$module" && GOFLAGS="$GOFLAGS -modfile=${modfile[$module]}" "build_$module" "$tmp" "$key") || { rm -rf "$tmp"; die "$module: go build failed"; }
	rm -rf "$dir"
	mv "$tmp" "$dir"
	log "$module: built in $((SECONDS - start))s"
	exec 9>&-
}

build_kubernetes() {
	local out="$1" key="$2" version major minor build_date ldflags pkg
	version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
	[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version '$version'"
	major="${BASH_REMATCH[1]}"
	minor="${BASH_REMATCH[2]}"
	# The release time the module proxy records keeps the binary reproducible.
	build_date="$(go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null || true)"
	ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitCommit=kubeforge-testenv-$key -X $pkg.gitTreeState=clean"
		ldflags+=" -X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}"
	done
	go build -trimpath -ldflags "$ldflags" -o "$out/kubernetes" . &&
		go build -trimpath -ldflags "-s -w" -o "$out/agnhost" k8s.io/kubernetes/test/images/agnhost
}

build_etcd() { go build -trimpath -ldflags "-s -w" -o "$1/etcd" .; }

build_containerd() {
	local version
	version="$(go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)"
	go build -trimpath -tags "$containerd_tags" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$version" -o "$1/" \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr
}

build_coredns() { go build -trimpath -ldflags "-s -w" -o "$1/coredns" .; }
build_pause() { go build -trimpath -ldflags "-s -w" -o "$1/pause" .; }
build_images() { go build -trimpath -o "$1/images" .; }

# The Kubernetes release, and the module file that pins it.
kubernetes_version="${1:-${KUBERNETES_VERSION:-}}"
if [[ -z "$kubernetes_version" ]]; then
	kubernetes_version="$(sed -En 's|^[[:space:]]*(require[[:space:]]+)?k8s.io/kubernetes (v[^ ]+)$|\2|p' "$src/kubernetes/go.mod")"
fi
[[ "$kubernetes_version" == v* ]] || kubernetes_version="v$kubernetes_version"
modfile[kubernetes]="$(module_file kubernetes k8s.io/kubernetes "$kubernetes_version")" ||
	die "no module file in $src/kubernetes pins k8s.io/kubernetes $kubernetes_version (have: $(versions_of kubernetes k8s.io/kubernetes)); write one with: $src/kubernetes/modfile.sh $kubernetes_version v${kubernetes_version#v}.mod"
(cd "$src/kubernetes" && go mod download -modfile="${modfile[kubernetes]}" k8s.io/kubernetes) ||
	die "kubernetes: go mod download failed (network? GOPROXY=$(go env GOPROXY))"

# The image tags are kubeadm's own (its constants), and the etcd and CoreDNS built are the
# versions those tags name.
kubeadm_src="$(cd "$src/kubernetes" && go list -modfile="${modfile[kubernetes]}" -m -f '{{.Dir}}' k8s.io/kubernetes)"
constant() {
	sed -n "s/^[[:space:]]*$1 = \"\\(.*\\)\"$/\\1/p" "$kubeadm_src/cmd/kubeadm/app/constants/constants.go" | head -1
}
etcd_tag="$(constant DefaultEtcdVersion)"
coredns_tag="$(constant CoreDNSVersion)"
pause_tag="$(constant PauseVersion)"
agnhost_tag="$(cat "$kubeadm_src/test/images/agnhost/VERSION")"
[[ -n "$etcd_tag" && -n "$coredns_tag" && -n "$pause_tag" ]] || die "could not read kubeadm's image versions from $kubeadm_src/cmd/kubeadm/app/constants/constants.go"
modfile[etcd]="$(module_file etcd go.etcd.io/etcd/server/v3 "v${etcd_tag%-*}")" ||
	die "kubeadm $kubernetes_version deploys etcd $etcd_tag but no module file in $src/etcd pins go.etcd.io/etcd/server/v3 v${etcd_tag%-*} (have: $(versions_of etcd go.etcd.io/etcd/server/v3))"
modfile[coredns]="$(module_file coredns github.com/coredns/coredns "$coredns_tag")" ||
	die "kubeadm $kubernetes_version deploys CoreDNS $coredns_tag but no module file in $src/coredns pins it (have: $(versions_of coredns github.com/coredns/coredns))"
for module in containerd pause images; do modfile[$module]=go.mod; done

for module in kubernetes etcd containerd coredns pause images; do
	build_module "$module"
done

# The kube-proxy image carries the host's iptables (nft) userland: the multi-call binary, its
# extensions and the libraries they load (images copies them with the links that lead to them).
iptables_list="$(mktemp)"
trap 'rm -f "$iptables_list"' EXIT
xtables=/usr/sbin/xtables-nft-multi
xtables_lib="$(dirname "$(ldd "$xtables" | awk '/libxtables/ {print $3}')")/xtables"
[[ -d "$xtables_lib" ]] || die "iptables extensions not found at $xtables_lib"
{
	printf '%s\n' "$xtables"
	ls "$xtables_lib"/*.so
	ldd "$xtables" "$xtables_lib"/*.so | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}'
	[[ -e /etc/protocols ]] && printf '%s\n' /etc/protocols
} | LC_ALL=C sort -u >"$iptables_list"

images_key="$(
	{
		printf '%s\n' "$dir_kubernetes" "$dir_etcd" "$dir_coredns" "$dir_pause" "$dir_images"
		printf '%s\n' "$kubernetes_version" "$etcd_tag" "$coredns_tag" "$pause_tag" "$agnhost_tag"
		xargs sha256sum <"$iptables_list"
	} | sha256sum | cut -c1-32
)"
env_dir="$cache_root/env-$images_key"
bin="$env_dir/bin"
if [[ ! -s "$env_dir/images.tar" || ! -d "$bin" ]]; then
	exec 9>"$cache_root/.build-env.lock"
	flock 9
	if [[ ! -s "$env_dir/images.tar" || ! -d "$bin" ]]; then
		log "images: writing images.tar (kubeadm's images for $kubernetes_version, agnhost $agnhost_tag)"
		tmp="$(mktemp -d "$cache_root/.tmp-env.XXXXXX")"
		"$dir_images/images" -o "$tmp/images.tar" \
			-kubernetes-version "$kubernetes_version" -kubernetes "$dir_kubernetes/kubernetes" \
			-etcd "$dir_etcd/etcd" -etcd-tag "$etcd_tag" \
			-coredns "$dir_coredns/coredns" -coredns-tag "$coredns_tag" \
			-pause "$dir_pause/pause" -pause-tag "$pause_tag" \
			-agnhost "$dir_kubernetes/agnhost" -agnhost-tag "$agnhost_tag" \
			-iptables-files "$iptables_list" || { rm -rf "$tmp"; die "writing images.tar failed"; }
		mkdir "$tmp/bin"
		for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm; do
			ln -s "$dir_kubernetes/kubernetes" "$tmp/bin/$c"
		done
		ln -s "$dir_kubernetes/agnhost" "$tmp/bin/agnhost"
		ln -s "$dir_etcd/etcd" "$tmp/bin/etcd"
		ln -s "$dir_etcd/etcd" "$tmp/bin/etcdctl"
		for c in containerd containerd-shim-runc-v2 ctr; do
			ln -s "$dir_containerd/$c" "$tmp/bin/$c"
		done
		ln -s "$dir_coredns/coredns" "$tmp/bin/coredns"
		ln -s "$dir_pause/pause" "$tmp/bin/pause"
		{
			printf 'registry.k8s.io/%s:%s\n' kube-apiserver "$kubernetes_version" kube-controller-manager "$kubernetes_version" \
				kube-scheduler "$kubernetes_version" kube-proxy "$kubernetes_version" etcd "$etcd_tag" \
				coredns/coredns "$coredns_tag" pause "$pause_tag" e2e-test-images/agnhost "$agnhost_tag"
		} >"$tmp/images.txt"
		rm -rf "$env_dir"
		mv "$tmp" "$env_dir"
	fi
	exec 9>&-
fi
printf '%s\n' "$bin"
