#!/usr/bin/env python3
"""Whole `kubeforge init` against `kubeadm init` on real nodes of the test env.

Each run creates a fresh one-node cluster (`kubeforge-testenv cluster create`: the node's
namespaces, its containerd and kubelet, kubeadm's images imported), runs one tool's `init` inside
the node with the same configuration file, and measures, from the start of `init`:

- the wall time of `init` itself;
- the wall time until the Node is Ready and until both CoreDNS Pods are Ready, polled every
  100 ms from the host over HTTPS with the node's super-admin.conf (admin.conf is not
  authorised before init binds kubeadm:cluster-admins);
- the tool's own time: `init`'s wall time minus what it spent waiting on the kubelet and the
  control plane, as the tool itself reports it: "[kubelet-check] The kubelet is healthy after
  X" plus the longest "[control-plane-check] <component> is healthy|ready after Y" (the checks
  run concurrently and are timed from the same start). Both tools print these lines.

and the time to create the node, as the CLI prints it ("Created cluster NAME in X s").

One warm-up run per tool comes first and is not counted (kubeforge compiles its components into
its artifact cache once; both tools' binaries and images get into the page cache). Then the tools
alternate, each run on its own fresh cluster. The table gives medians (min–max).

    benches/init-real-node.py [--runs N] [--out DIR] [--algorithm ECDSA-P256]

`--algorithm` sets the ClusterConfiguration's encryptionAlgorithm for both tools (default:
unset, kubeadm's RSA-2048); the results then go to init-real-node-<algorithm>.{json,md}.

Environment: KUBEFORGE_BENCH_BIN (a directory with kubeforge and kubeforge-testenv, default a
release build of this tree), KUBEFORGE_TESTENV_BIN (the test env's bin dir). Needs root.
"""

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  # kubeadm's only objection to this machine: its cgroup v1 hierarchy.
  ignorePreflightErrors: [SystemVerification]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking:
  podSubnet: 10.244.0.0/16
"""

STATE_ROOT = os.environ.get("KUBEFORGE_TESTENV_STATE") or "/var/tmp/kubeforge-testenv"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def cluster_settings(repo):
    """The test env's CLUSTER_SETTINGS (tests/harness/src/config.rs), as the tests append it."""
    source = open(os.path.join(repo, "tests/harness/src/config.rs")).read()
    match = re.search(r'pub const CLUSTER_SETTINGS: &str = "\\\n(.*?)";\n', source, re.S)
    if not match:
        sys.exit("CLUSTER_SETTINGS not found in tests/harness/src/config.rs")
    return match.group(1).replace('\\"', '"')


def go_duration(text):
    """Seconds of a Go duration as Go prints it: 1m2.5s, 4.5s, 504.8ms, 12µs."""
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|µs|us|ns|m|s)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6,
                                  "us": 1e-6, "ns": 1e-9}[unit]
    return total


def waits(output):
    """(kubelet wait, control-plane wait) in seconds, from the tool's own lines."""
    kubelet = re.findall(r"\[kubelet-check\] The kubelet is healthy after (\S+)", output)
    control_plane = re.findall(
        r"\[control-plane-check\] \S+ is (?:healthy|ready) after (\S+)", output)
    if len(kubelet) != 1 or not control_plane:
        raise RuntimeError("no kubelet-check / control-plane-check timings in:\n" + output)
    return go_duration(kubelet[0]), max(go_duration(d) for d in control_plane)


# Where init's time goes, from the arrival of each phase's first line: (key, label, the output
# tags of the phases in it). A segment lasts from its first line (the first: from the start of
# the process) to the next segment's.
SEGMENTS = [
    ("seg_start", "process start, config, preflight", ["init", "preflight"]),
    ("seg_certs", "certs", ["certs"]),
    ("seg_kubeconfig", "kubeconfig", ["kubeconfig"]),
    ("seg_manifests", "etcd, control-plane (static Pod manifests)", ["etcd", "control-plane"]),
    ("seg_kubelet_start", "kubelet-start (stop, files, start)", ["kubelet-start", "patches"]),
    ("seg_wait", "wait-control-plane", ["wait-control-plane", "kubelet-check",
                                        "control-plane-check"]),
    ("seg_api", "upload-config … addons (incl. kubelet-finalize's kubelet restart)",
     ["upload-config", "kubelet", "upload-certs", "mark-control-plane", "bootstrap-token",
      "kubelet-finalize", "addons"]),
]


def segments(lines, end):
    """Seconds per segment of SEGMENTS, from (arrival, line) pairs; the last one ends at the
    first line that is no phase's (the closing text) or at `end`."""
    firsts = {"seg_start": 0.0}  # from the process's start
    closing = end
    for at, line in lines:
        tag = re.match(r"\[([a-z-]+)\]", line)
        segment = next((key for key, _, tags in SEGMENTS if tag and tag.group(1) in tags), None)
        if segment:
            firsts.setdefault(segment, at)
        elif firsts.get("seg_api") is not None and line.strip() and closing == end:
            closing = at
    keys = [key for key, _, _ in SEGMENTS]
    starts = [firsts.get(key) for key in keys]
    out = {}
    for i, key in enumerate(keys):
        if starts[i] is None:
            continue
        following = next((t for t in starts[i + 1:] if t is not None), closing)
        out[key] = following - starts[i]
    return out


class Poller(threading.Thread):
    """Polls the cluster for the Node's and CoreDNS's readiness; records monotonic times."""

    def __init__(self, node_root, node_name, deadline):
        super().__init__(daemon=True)
        self.node_root, self.node_name, self.deadline = node_root, node_name, deadline
        self.node_ready = self.dns_ready = None
        self.error = None
        self.stop = False
        self.tmp = tempfile.mkdtemp(prefix="kubeforge-bench-poll.")

    def context(self):
        path = os.path.join(self.node_root, "etc/kubernetes/super-admin.conf")
        text = open(path).read()
        fields = dict(re.findall(r"^\s*([a-z-]+): (\S+)$", text, re.M))
        files = {}
        for key in ["certificate-authority-data", "client-certificate-data", "client-key-data"]:
            files[key] = os.path.join(self.tmp, key)
            with open(files[key], "wb") as f:
                f.write(base64.b64decode(fields[key]))
        context = ssl.create_default_context(cafile=files["certificate-authority-data"])
        context.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
        host, port = fields["server"].removeprefix("https://").rsplit(":", 1)
        return context, host, int(port)

    def get(self, conn, path):
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        return json.loads(body)

    @staticmethod
    def ready(obj):
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in obj.get("status", {}).get("conditions", []))

    def run(self):
        context = None
        while not self.stop and time.monotonic() < self.deadline:
            try:
                if context is None:
                    context = self.context()
                conn = http.client.HTTPSConnection(context[1], context[2], context=context[0],
                                                   timeout=2)
                if self.node_ready is None:
                    node = self.get(conn, f"/api/v1/nodes/{self.node_name}")
                    if node and self.ready(node):
                        self.node_ready = time.monotonic()
                if self.node_ready is not None and self.dns_ready is None:
                    pods = self.get(conn, "/api/v1/namespaces/kube-system/pods"
                                          "?labelSelector=k8s-app%3Dkube-dns")
                    items = (pods or {}).get("items", [])
                    if len(items) == 2 and all(self.ready(p) for p in items):
                        self.dns_ready = time.monotonic()
                conn.close()
                if self.dns_ready is not None:
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException, KeyError, ValueError):
                pass  # admin.conf not written yet, the API server not up yet, …
            time.sleep(0.1)
        if self.dns_ready is None:
            self.error = "the Node or CoreDNS was not Ready within the deadline"

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_tool(args, tool, index, config_path, cache_dir):
    name = f"bench-{'kf' if tool == 'kubeforge' else 'ka'}"
    node = f"{name}-control-plane"
    subprocess.run([args.testenv, "cluster", "delete", name], capture_output=True)
    created = subprocess.run(
        [args.testenv, "cluster", "create", name, "--kubeforge", args.kubeforge],
        capture_output=True, text=True)
    if created.returncode != 0:
        raise RuntimeError(f"creating cluster {name}:\n{created.stderr}")
    node_create = float(re.search(r"Created cluster \S+ in ([0-9.]+)s", created.stderr).group(1))
    try:
        record = json.load(open(os.path.join(STATE_ROOT, name, "cluster.json")))
        pid = next(n["supervisor"]["pid"] for n in record["nodes"] if n["name"] == node)
        load = open("/proc/loadavg").read().split()[0]
        started = time.monotonic()
        poller = Poller(f"/proc/{pid}/root", node, started + 300)
        poller.start()
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["KUBEFORGE_CACHE_DIR"] = cache_dir
        env.pop("KUBEFORGE_LOG", None)
        # Each line of the tool's output with the time it arrived (both tools flush each line).
        init = subprocess.Popen(
            [args.testenv, "exec", node, "--", tool, "init", "--config", config_path],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = [(time.monotonic() - started, line) for line in init.stdout]
        init.wait()
        init_wall = time.monotonic() - started
        output = "".join(line for _, line in lines)
        if init.returncode != 0:
            poller.stop = True
            raise RuntimeError(f"{tool} init failed:\n{output}")
        poller.join()
        poller.cleanup()
        if poller.error:
            raise RuntimeError(f"{tool} run {index}: {poller.error}")
        kubelet_wait, control_plane_wait = waits(output)
        result = {
            "tool": tool, "run": index, "load": float(load), "node_create": node_create,
            "init": init_wall, "node_ready": poller.node_ready - started,
            "coredns_ready": poller.dns_ready - started, "kubelet_wait": kubelet_wait,
            "control_plane_wait": control_plane_wait,
            "own": init_wall - kubelet_wait - control_plane_wait,
        }
        result.update(segments(lines, init_wall))
        log(f"{tool} run {index}: " + ", ".join(
            f"{k} {v:.2f}" for k, v in result.items() if isinstance(v, float)))
        return result
    finally:
        subprocess.run([args.testenv, "cluster", "delete", name], capture_output=True)


def table(results, runs):
    rows = [("node created (namespaces, containerd, kubelet, images)", "node_create"),
            ("`init` wall time", "init"),
            ("Node Ready (from the start of `init`)", "node_ready"),
            ("CoreDNS Ready (both Pods, from the start of `init`)", "coredns_ready"),
            ("waiting on the kubelet (its `[kubelet-check]` line)", "kubelet_wait"),
            ("waiting on the control plane (longest `[control-plane-check]` line)",
             "control_plane_wait"),
            ("**own time** = `init` − the two waits", "own")]

    def cell(tool, key):
        values = [r[key] for r in results if r["tool"] == tool]
        return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"

    lines = [f"| median of {runs} runs (min–max) | kubeforge | kubeadm | kubeforge / kubeadm |",
             "| --- | --- | --- | --- |"]
    for label, key in rows:
        kf = statistics.median(r[key] for r in results if r["tool"] == "kubeforge")
        ka = statistics.median(r[key] for r in results if r["tool"] == "kubeadm")
        lines.append(f"| {label} | {cell('kubeforge', key)} | {cell('kubeadm', key)} | "
                     f"{kf / ka:.2f} |")
    lines.append("")
    lines.append(f"Where `init`'s time goes (median of {runs} runs; from the arrival of each "
                 "phase's first output line):")
    lines.append("")
    lines.append("| segment | kubeforge | kubeadm |")
    lines.append("| --- | --- | --- |")
    for key, label, _ in SEGMENTS:
        cells = []
        for tool in ["kubeforge", "kubeadm"]:
            values = [r[key] for r in results if r["tool"] == tool and key in r]
            cells.append(f"{statistics.median(values):.3f} s" if values else "-")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    loads = [r["load"] for r in results]
    lines.append("")
    lines.append(f"Load average (1 min) at the start of each run: {min(loads):.2f}–{max(loads):.2f}.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="benches/results")
    parser.add_argument("--algorithm", help="encryptionAlgorithm for both tools")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(repo)
    if os.geteuid() != 0:
        sys.exit("needs root (the test env's nodes)")
    bin_dir = os.environ.get("KUBEFORGE_BENCH_BIN")
    if not bin_dir:
        subprocess.run(["cargo", "build", "--release", "-p", "kubeforge", "-p",
                        "kubeforge-testenv"], check=True, stdout=sys.stderr)
        metadata = json.loads(subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"]))
        bin_dir = os.path.join(metadata["target_directory"], "release")
    args.kubeforge = os.path.join(bin_dir, "kubeforge")
    args.testenv = os.path.join(bin_dir, "kubeforge-testenv")
    if not os.environ.get("KUBEFORGE_TESTENV_BIN"):
        os.environ["KUBEFORGE_TESTENV_BIN"] = subprocess.check_output(
            ["tests/testenv/build.sh"], text=True).strip()
    commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    log(f"kubeforge {args.kubeforge} (commit {commit}), kubeadm "
        f"{os.environ['KUBEFORGE_TESTENV_BIN']}/kubeadm")

    # /tmp is shared with the nodes.
    work = tempfile.mkdtemp(prefix="kubeforge-bench-init.", dir="/tmp")
    config_path = os.path.join(work, "init.yaml")
    config = CONFIG
    suffix = ""
    if args.algorithm:
        config = config.replace("kubernetesVersion: v1.37.2\n",
                                f"kubernetesVersion: v1.37.2\nencryptionAlgorithm: {args.algorithm}\n")
        suffix = "-" + args.algorithm.lower()
    with open(config_path, "w") as f:
        f.write(config + cluster_settings(repo))
    cache_dir = os.path.join(work, "cache")

    results = []
    try:
        for tool in ["kubeforge", "kubeadm"]:
            log(f"warm-up run of {tool} (not counted)")
            run_tool(args, tool, 0, config_path, cache_dir)
        for index in range(1, args.runs + 1):
            order = ["kubeforge", "kubeadm"] if index % 2 else ["kubeadm", "kubeforge"]
            for tool in order:
                results.append(run_tool(args, tool, index, config_path, cache_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"init-real-node{suffix}.json"), "w") as f:
        json.dump({"commit": commit, "config": config, "results": results}, f, indent=1)
    text = table(results, args.runs)
    kf = statistics.median(r["own"] for r in results if r["tool"] == "kubeforge")
    ka = statistics.median(r["own"] for r in results if r["tool"] == "kubeadm")
    text += (f"\n\nOwn time, kubeforge / kubeadm: {kf / ka:.2f} — target ≤ 0.20 "
             f"{'met' if kf / ka <= 0.2 else 'not met'}.\n")
    with open(os.path.join(args.out, f"init-real-node{suffix}.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
