"""Throwaway sandboxes: a host namespace (where the backend under test runs)
and a LAN neighbour wired to it by a veth pair. Made with `ip netns add`
under names unique to this run, and removed with everything started in
them, even when a task fails. The machine's own network namespace is only
ever asked to run `ip netns add/del/exec/pids`.
"""

import glob
import json
import os
import signal
import subprocess
import sys

from . import nsutil

PREFIX = "pont-b"
WORKER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "worker.py")


def ip(*args, check=True):
    return nsutil.run(["ip"] + list(args), check=check)


class Sandbox:
    counter = 0

    def __init__(self, run_id, tmp):
        Sandbox.counter += 1
        base = f"{PREFIX}-{run_id}-{Sandbox.counter}"
        self.host, self.lan = f"{base}-host", f"{base}-lan"
        self.tmp = os.path.join(tmp, f"sb{Sandbox.counter}")
        os.makedirs(self.tmp)

    def __enter__(self):
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def _make(self):
        ip("netns", "add", self.host)
        ip("netns", "add", self.lan)
        h, n = ["-n", self.host], ["-n", self.lan]
        ip(*h, "link", "set", "lo", "up")
        ip(*n, "link", "set", "lo", "up")
        ip(*h, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", self.lan)
        ip(*h, "addr", "add", "192.0.2.1/24", "dev", "lan0")
        ip(*h, "link", "set", "lan0", "up")
        ip(*n, "addr", "add", "192.0.2.10/24", "dev", "eth0")
        ip(*n, "link", "set", "eth0", "up")
        # Connection-rate runs open tens of thousands of connections from here.
        nsutil.run(["ip", "netns", "exec", self.lan, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"])

    def work(self, params):
        """Run one task in a worker inside the host namespace; its result."""
        params = dict(params, tmp=self.tmp, lan=self.lan)
        p = subprocess.run(
            ["ip", "netns", "exec", self.host, sys.executable, WORKER, json.dumps(params)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if p.returncode != 0:
            raise RuntimeError(f"task {params['task']} ({params.get('impl')}) failed (exit {p.returncode})")
        return json.loads(p.stdout)

    def session(self, params):
        """A worker kept running in the host namespace, called step by step."""
        return Session(self, dict(params, tmp=self.tmp, lan=self.lan))

    def remove(self):
        stop_started(self.tmp)
        for ns in (self.host, self.lan):
            for pid in ip("netns", "pids", ns, check=False).split():
                # Everything in these namespaces was started by this run.
                kill(int(pid), None)
            ip("netns", "del", ns, check=False)


class Session:
    """A worker in `sandbox`'s host namespace that makes a task's topology
    and then answers one request at a time (worker.py --session): one JSON
    line each way. Use it in a `with` block inside the sandbox's own."""

    def __init__(self, sandbox, params):
        self.what = f"{params['task']} ({params.get('impl')})"
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", sandbox.host, sys.executable, WORKER, "--session", json.dumps(params)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.paths = self._read()["paths"]
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"session {self.what} ended (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self):
        """End of input: the worker removes its topology and exits."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the sandbox's removal stops what it left behind
            self.proc.wait()


def kill(pid, start):
    if start is not None and nsutil.start_time(pid) != start:
        return  # that PID is someone else's now
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_started(tmp):
    """Stop what a worker started and could not stop itself: helpers listed
    in its pid file and containers of its pont state roots (each record
    holds its init's PID and start time)."""
    pidfile = os.path.join(tmp, "pids")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            for line in f:
                pid, start = line.split()
                kill(int(pid), None if start == "None" else int(start))
    for cfg in glob.glob(os.path.join(tmp, "root-*", "containers", "*", "config.json")):
        try:
            with open(cfg) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        for pid, start in ((rec.get("monitor_pid"), rec.get("monitor_start_time")), (rec.get("pid"), rec.get("start_time"))):
            if pid and start:
                kill(pid, start)


def leftovers(run_id):
    """Namespaces of this run still present (for the final check)."""
    names = ip("netns", "list", check=False).split("\n")
    return [n.split()[0] for n in names if n.startswith(f"{PREFIX}-{run_id}-")]


def remove_leftovers(run_id):
    for ns in leftovers(run_id):
        for pid in ip("netns", "pids", ns, check=False).split():
            kill(int(pid), None)
        ip("netns", "del", ns, check=False)
