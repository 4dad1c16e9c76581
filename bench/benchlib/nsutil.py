"""Network namespaces and processes, for code that already runs inside a sandbox.

Nothing here touches the network namespace it runs in except through the tools
it is asked to run: the worker process is born inside a sandbox host namespace
(`ip netns exec`), so the machine's own namespace is out of reach.
"""

import ctypes
import os
import subprocess
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000  # <linux/sched.h>
MS_BIND = 4096  # <linux/mount.h>
MNT_DETACH = 2  # <linux/mount.h>


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _make_and_pin(path, failures):
    # unshare(CLONE_NEWNET) moves only this thread, which ends right after.
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _check(
            _libc.mount(b"/proc/thread-self/ns/net", path.encode(), None, MS_BIND, None),
            f"bind-mount a namespace on {path}",
        )
    except OSError as e:
        failures.append(e)


def create_pinned(path):
    """A new network namespace pinned at `path`, as `ip netns add` or Podman make one."""
    with open(path, "x"):
        pass
    failures = []
    t = threading.Thread(target=_make_and_pin, args=(path, failures))
    t.start()
    t.join()
    if failures:
        os.unlink(path)
        raise failures[0]


def release(path):
    """Unpin a namespace: the kernel removes it (and what is left in it) in the background."""
    _libc.umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def in_ns(path, argv):
    """argv run inside the pinned namespace at `path`."""
    return ["nsenter", f"--net={path}", "--"] + list(argv)


# (strace options ending in -o, file prefix) while profiling: every command
# run() starts is traced into a file of its own.
TRACE = None
_traced = []


def trace_files():
    """The trace files written since the last call."""
    global _traced
    files, _traced = _traced, []
    return files


def run(argv, stdin=None, check=True, env=None):
    """Run argv, return its stdout; raise with its stderr on failure."""
    if TRACE is not None:
        opts, prefix = TRACE
        path = f"{prefix}.{len(_traced)}"
        _traced.append(path)
        argv = opts + [path] + list(argv)
    p = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
    )
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def timed(fn, *args, **kwargs):
    """(milliseconds, result) of fn(*args)."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000.0, result


def start_time(pid):
    """Field 22 of /proc/PID/stat: tells a process from a later one with its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


class Processes:
    """Long-running helpers (servers) this run started, stopped by PID only.

    Each one is also written to `pidfile` with its start time, so the
    orchestrator can stop them if this worker dies first.
    """

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.procs = []

    def start(self, argv, env=None):
        p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.procs.append(p)
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid} {start_time(p.pid)}\n")
        return p

    def stop(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)
        self.procs = []


def wait_until(pred, timeout_s=10.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def tcp_open(ip, port, timeout=0.2):
    import socket

    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def processes_in_netns(ns_link):
    """PIDs whose network namespace is `ns_link` (a readlink of /proc/X/ns/net)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/net") == ns_link:
                    out.append(int(d))
            except OSError:
                pass
    return out


def comm(pid):
    """A process's command name, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def meminfo_kb():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out
