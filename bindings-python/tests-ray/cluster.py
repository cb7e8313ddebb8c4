"""A real two-node Ray cluster on one machine, for the Ray tests and bench.

Two network namespaces ("machines") joined by a veth pair with private
addresses this module makes and removes: the head at 10.201.0.1, the
worker at 10.201.0.2, loopback up in each; nothing else is reachable from
them, and Ray's usage reporting is off. `ray start` runs in each, as a
user would. `Cluster.down()` stops Ray in each namespace (`ray stop`),
kills by pid whatever is still in a namespace, and deletes both.

Run as a program, it brings the cluster up, runs the rest of its command
line inside the head namespace (the host process must run on a Ray node),
and tears everything down however that ends:

    python cluster.py -- python -m pytest -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

HEAD_NS = "atray-head"
WORKER_NS = "atray-worker"
HEAD_IP = "10.201.0.1"
WORKER_IP = "10.201.0.2"
PORT = 6379
ADDRESS = f"{HEAD_IP}:{PORT}"
WORKER_RESOURCE = "worker-box"
CPUS = 2
BOUND = 120.0


# The temporary folder of everything the cluster runs (TMPDIR): the node
# agents' managers make their temporary roots there, and `ray stop` kills
# them with no chance to remove those, so the teardown removes this folder.
TMP = f"/tmp/atray-{os.getpid()}-tmp"


def env() -> Dict[str, str]:
    """The environment for everything Ray: usage reporting off, TMPDIR ours."""
    e = dict(os.environ)
    e["RAY_USAGE_STATS_ENABLED"] = "0"
    e["TMPDIR"] = TMP
    e.setdefault("RAY_DEDUP_LOGS", "0")
    return e


def _run(args: Sequence[str], check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def in_ns(ns: str, args: Sequence[str]) -> List[str]:
    return ["ip", "netns", "exec", ns, *args]


def ray_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


def ns_pids(ns: str) -> List[int]:
    out = _run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split()]


def worker_raylet_pid() -> Optional[int]:
    """The pid of the worker namespace's raylet."""
    for pid in ns_pids(WORKER_NS):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "raylet":
                    return pid
        except OSError:
            continue
    return None


class Cluster:
    def __init__(self) -> None:
        self.temp_dir = f"/tmp/atray-{os.getpid()}"

    def up(self) -> None:
        self.down(quiet=True)
        os.makedirs(TMP, exist_ok=True)
        _run(["ip", "netns", "add", HEAD_NS])
        _run(["ip", "netns", "add", WORKER_NS])
        _run(["ip", "link", "add", "atray-h", "netns", HEAD_NS, "type", "veth",
              "peer", "name", "atray-w", "netns", WORKER_NS])
        for ns, dev, ip in ((HEAD_NS, "atray-h", HEAD_IP), (WORKER_NS, "atray-w", WORKER_IP)):
            _run(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
            _run(in_ns(ns, ["ip", "addr", "add", f"{ip}/24", "dev", dev]))
            _run(in_ns(ns, ["ip", "link", "set", dev, "up"]))
        common = ["--disable-usage-stats", f"--num-cpus={CPUS}", "--object-store-memory=100000000"]
        head = in_ns(HEAD_NS, [ray_bin(), "start", "--head", f"--node-ip-address={HEAD_IP}",
                               f"--port={PORT}", f"--temp-dir={self.temp_dir}",
                               "--include-dashboard=false", *common])
        r = subprocess.run(head, env=env(), text=True, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"ray start --head failed:\n{r.stdout}\n{r.stderr}")
        worker = in_ns(WORKER_NS, [ray_bin(), "start", f"--address={ADDRESS}",
                                   f"--node-ip-address={WORKER_IP}",
                                   f"--resources={json.dumps({WORKER_RESOURCE: 8})}", *common])
        r = subprocess.run(worker, env=env(), text=True, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"ray start (worker) failed:\n{r.stdout}\n{r.stderr}")

    def down(self, quiet: bool = False) -> None:
        for ns in (WORKER_NS, HEAD_NS):
            if ns not in _run(["ip", "netns", "list"]).stdout.split():
                continue
            _run(in_ns(ns, [ray_bin(), "stop", "--force"]), check=False, env=env(), timeout=120)
            deadline = time.monotonic() + 30
            while True:
                pids = ns_pids(ns)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline:
                    if not quiet:
                        print(f"warning: processes left in {ns}: {pids}", file=sys.stderr)
                    break
                time.sleep(0.05)
            _run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["rm", "-rf", self.temp_dir, TMP])


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the teardown below


def main(argv: List[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    # Killed by a timeout or Ctrl+C: tear down all the same.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cluster = Cluster()
    try:
        cluster.up()
        return subprocess.run(in_ns(HEAD_NS, argv), env=env()).returncode
    finally:
        cluster.down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
