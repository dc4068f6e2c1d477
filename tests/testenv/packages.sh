#!/usr/bin/env bash
# Make sure the Debian packages the test env's nodes run are installed: runc (containerd's
# runtime), the CNI plugins (bridge, host-local, loopback, portmap), iptables (the kubelet, the
# CNI plugins and the kube-proxy image use it) and haproxy (the load balancer in front of HA
# control planes). As root it installs what is missing with apt-get; otherwise it names the
# packages and the command, and fails.
#
#   tests/testenv/packages.sh          # check, install what is missing
#   tests/testenv/packages.sh --list   # print the package names
set -euo pipefail

# package:file that proves it is installed
packages=(
	runc:/usr/sbin/runc
	containernetworking-plugins:/usr/lib/cni/bridge
	iptables:/usr/sbin/xtables-nft-multi
	haproxy:/usr/sbin/haproxy
)

if [[ "${1:-}" == "--list" ]]; then
	for p in "${packages[@]}"; do printf '%s\n' "${p%%:*}"; done
	exit 0
fi

missing=()
for p in "${packages[@]}"; do
	[[ -e "${p#*:}" ]] || missing+=("${p%%:*}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

command="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
	printf 'testenv/packages.sh: error: missing Debian packages: %s\n  install them with: sudo %s\n' "${missing[*]}" "$command" >&2
	exit 1
fi
command -v apt-get >/dev/null || {
	printf 'testenv/packages.sh: error: missing packages %s and no apt-get on this machine; install them with its package manager\n' "${missing[*]}" >&2
	exit 1
}
printf 'testenv/packages.sh: installing %s (apt-get)\n' "${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; update once when the install cannot find them.
apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
for p in "${packages[@]}"; do
	[[ -e "${p#*:}" ]] || { printf 'testenv/packages.sh: error: %s is still missing after %s\n' "${p#*:}" "$command" >&2; exit 1; }
done
