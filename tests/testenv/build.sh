#!/usr/bin/env bash
# Build the kubeforge testenv multi-call binary (real kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kubeadm and etcd from the Go
# module proxy) into a cache outside the repository, and print the directory of
# per-component symlinks as the only line on stdout. Progress goes to stderr.
#
#   bin=$(tests/testenv/build.sh)   # e.g. ~/.cache/kubeforge-testenv/<hash>/bin
#   "$bin/kube-apiserver" --version
#
# The cache key is a hash over go.mod, go.sum, the Go sources, this script and
# `go version`; when <cache>/<hash>/bin is complete the script returns at once.
# Concurrent invocations serialise on a lock file; the binary is built into a
# temporary path and renamed, so an interrupted build never leaves a half binary.
#
# Environment:
#   KUBEFORGE_TESTENV_CACHE  cache root (default $HOME/.cache/kubeforge-testenv)
#   GOFLAGS, GOPROXY, ...    passed through to the go command
set -euo pipefail

log() { printf 'testenv/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
components=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubeadm etcd)

command -v go >/dev/null 2>&1 || die "the go toolchain is not on PATH (need Go >= 1.25; see $src/README.md)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"

cache_root="${KUBEFORGE_TESTENV_CACHE:-${HOME:?HOME is not set}/.cache/kubeforge-testenv}"

hash="$(
	cd "$src"
	{
		go version
		for f in go.mod go.sum build.sh $(find . -name '*.go' -type f | LC_ALL=C sort); do
			printf '%s\n' "$f"
			sha256sum <"$f"
		done
	} | sha256sum | cut -c1-32
)"
dir="$cache_root/$hash"
bin="$dir/bin"

complete() {
	[[ -x "$dir/testenv" ]] || return 1
	local c
	for c in "${components[@]}"; do
		[[ -L "$bin/$c" && -x "$bin/$c" ]] || return 1
	done
}

if complete; then
	printf '%s\n' "$bin"
	exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build-$hash.lock"
if ! flock -n 9; then
	log "another build of $hash is running; waiting for it"
	flock 9
fi
if complete; then
	printf '%s\n' "$bin"
	exit 0
fi
mkdir -p "$dir"

cd "$src"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -mod=readonly"

k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
[[ "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version '$k8s_version'"
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
# The release time of k8s.io/kubernetes as recorded by the module proxy keeps
# the binary reproducible; fall back to the epoch.
build_date="$(go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null || true)"
build_date="${build_date:-1970-01-01T00:00:00Z}"

log "step 1/2: downloading the modules needed for $k8s_version (go mod download)"
start=$SECONDS
modules="$(go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}' . | LC_ALL=C sort -u)" ||
	die "resolving the module graph failed (network? GOPROXY=$(go env GOPROXY))"
# shellcheck disable=SC2086
go mod download $modules || die "go mod download failed (network? GOPROXY=$(go env GOPROXY))"
log "modules ready in $((SECONDS - start))s"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s_version"
	ldflags+=" -X $pkg.gitMajor=$major"
	ldflags+=" -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitCommit=kubeforge-testenv-$hash"
	ldflags+=" -X $pkg.gitTreeState=clean"
	ldflags+=" -X $pkg.buildDate=$build_date"
done

tmp="$(mktemp -d "$dir/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "step 2/2: go build ($k8s_version, CGO_ENABLED=0) into $dir; a cold build takes many minutes"
start=$SECONDS
go build -trimpath -ldflags "$ldflags" -o "$tmp/testenv" . || die "go build failed"
log "built in $((SECONDS - start))s"

mkdir "$tmp/bin"
for c in "${components[@]}"; do
	ln -s ../testenv "$tmp/bin/$c"
done
mv -f "$tmp/testenv" "$dir/testenv"
rm -rf "$bin"
mv "$tmp/bin" "$bin"

complete || die "cache layout in $dir is incomplete after the build"
log "ready: $bin"
printf '%s\n' "$bin"
