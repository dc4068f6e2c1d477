#!/usr/bin/env bash
# Every test (`make test`): tests/run-all.sh DEFAULT_RELEASE [OLDER_RELEASE ...]
#
# A cold build of one release's test env is minutes of Go on two cores, and the e2e tests spend
# most of theirs waiting on real nodes, so the older releases' test envs build (niced) while the
# default release's tests run. A test that needs an older release's test env carries the release
# in its name (v1.36.3: `v1_36`); those run once their env is built. The guests' native tests last.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -ge 1 ]] || { echo "usage: $0 DEFAULT_RELEASE [OLDER_RELEASE ...]" >&2; exit 2; }
default=$1
shift

# v1.36.3 -> v1_36
test_name_of() { local minor=${1%.*}; echo "${minor//./_}"; }

KUBEFORGE_TESTENV_BIN=$(tests/testenv/build.sh "$default")
export KUBEFORGE_TESTENV_BIN

older_log=$(mktemp -t kubeforge-testenv-older.XXXXXX)
# A process group of its own (job control), so a failed or interrupted run stops the whole build
# with it (the trap); not a session of its own: the kernel's autogroups would give a new session an
# equal share of the CPU whatever its nice value, and the build would halve the tests' build
# (measured: 23 min, not 12).
set -m
(for release; do nice -n 19 tests/testenv/build.sh "$release" >/dev/null || exit 1; done) \
	>"$older_log" 2>&1 &
older_build=$!
set +m
trap 'kill -- "-$older_build" 2>/dev/null || true; rm -f "$older_log"' EXIT

skips=()
for release in "$@"; do skips+=(--skip "$(test_name_of "$release")"); done
cargo test --workspace -- "${skips[@]}"

if ! wait "$older_build"; then
	cat "$older_log" >&2
	echo "run-all.sh: building the test env of $* failed (log above): tests/testenv/build.sh RELEASE" >&2
	exit 1
fi
cat "$older_log" >&2
for release in "$@"; do
	cargo test --workspace -- "$(test_name_of "$release")"
done

cd guest-phases
cargo test --target "$(rustc -vV | sed -n 's/^host: //p')"
