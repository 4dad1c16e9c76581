"""The measurements. Each task runs in a worker process born inside a fresh
sandbox host namespace (see bench.py) and returns plain JSON-able data.

Addresses: the sandbox host is 192.0.2.1 on `lan0`, its LAN neighbour
192.0.2.10; pont's network is 10.88.0.0/16, netavark's 10.89.0.0/16, the CNI
network 10.90.0.0/16, the bare reference bridge 10.91.0.0/16.
"""

import json
import os
import re
import statistics
import time

from . import impls, nsutil

HOST_IP = "192.0.2.1"
LAN_IP = "192.0.2.10"
LATENCY_PORT_BASE = 10000  # container i publishes host port 10000+i
OTHERS_PORT_BASE = 20000  # the "other mappings" of kth and conn
PROBE_PORT = 40000
SERVER_PORT = 8080
RANGE_START, RANGE_LEN = 30000, 10000


class Ctx:
    def __init__(self, p):
        self.p = p
        self.tmp = p["tmp"]
        self.bins = p["bins"]
        self.lan = p.get("lan")
        self.procs = nsutil.Processes(os.path.join(self.tmp, "pids"))

    def impl(self, name=None):
        return impls.make(name or self.p["impl"], self.tmp, self.bins)

    def in_lan(self, argv):
        return ["ip", "netns", "exec", self.lan] + argv


def log(msg):
    print(f"    {msg}", file=os.sys.stderr, flush=True)


# (1) per-container setup and teardown latency


def latency(ctx):
    impl = ctx.impl()
    n = ctx.p["n"]
    try:
        impl.create_network()
        made, setup, teardown, steps_setup, steps_teardown = [], [], [], [], []
        for i in range(n):
            c = impl.container([(LATENCY_PORT_BASE + i, 80, 1)])
            setup.append(impl.setup(c))
            steps_setup.append(c.steps)
            made.append(c)
        for c in made:
            teardown.append(impl.teardown(c))
            steps_teardown.append(c.steps)
        out = {"setup_ms": setup, "teardown_ms": teardown}
        if steps_setup[0] is not None:
            out["steps_setup_us"] = steps_setup
            out["steps_teardown_us"] = steps_teardown
        return out
    finally:
        impl.close()


# (2) the cost of the k-th port mapping


def kth(ctx):
    impl = ctx.impl()
    probes = ctx.p["probes"]
    try:
        impl.create_network()
        # A resident container without ports, so that no probe is the network's
        # first or last container (netavark makes and removes the bridge then).
        anchor = impl.container([])
        impl.setup(anchor)
        port_add = isinstance(impl, impls.PontRun)
        out, installed = {}, 0
        ks = sorted(ctx.p["ks"])
        for k in ks:
            need = k - 1 - installed
            if need > 0:
                impl.populate(need, OTHERS_PORT_BASE + installed)
                installed += need
            add, rm = [], []
            n = ctx.p.get("probes_at_max", probes) if k == ks[-1] else probes
            for _ in range(n):
                if port_add:
                    add.append(impl.port_add(anchor, [f"{PROBE_PORT}:80"]))
                    rm.append(impl.port_rm(anchor, [f"{PROBE_PORT}:80"]))
                else:
                    c = impl.container([(PROBE_PORT, 80, 1)])
                    add.append(impl.setup(c))
                    rm.append(impl.teardown(c))
            out[str(k)] = {"add_ms": add, "rm_ms": rm}
            log(f"{impl.name} k={k}: add {statistics.median(add):.1f} ms")
        return out
    finally:
        impl.close()


# (3) new connections per second through a published port


def serve(ctx, impl, c, argv):
    """Start argv inside container c (pont run containers run it as their command)."""
    if not isinstance(impl, impls.PontRun):
        ctx.procs.start(nsutil.in_ns(impl.netns_of(c), argv))


def conn(ctx):
    impl = ctx.impl()
    others = ctx.p["others"]
    try:
        impl.create_network()
        if others:
            impl.populate(others, OTHERS_PORT_BASE)
        server = [ctx.bins["pont-bench"], "http-serve", "--port", "80", "--threads", str(ctx.p["threads"])]
        c = impl.container([(SERVER_PORT, 80, 1)], command=server)
        impl.setup(c)
        if isinstance(impl, impls.PontRun):
            impl.inspect(c)
        serve(ctx, impl, c, server)
        nsutil.wait_until(lambda: nsutil.tcp_open(c.ip, 80), what="the HTTP server")
        url = f"http://{HOST_IP}:{SERVER_PORT}/"
        wrk = ["wrk", "-t1", f"-c{ctx.p['connections']}", "-H", "Connection: close"]
        nsutil.run(ctx.in_lan(wrk + ["-d1s", url]))  # warm-up
        rates, errors = [], []
        for _ in range(ctx.p["runs"]):
            nsutil.run(["conntrack", "-F"], check=False)
            text = nsutil.run(ctx.in_lan(wrk + [f"-d{ctx.p['seconds']}s", url]))
            rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
            m = re.search(r"Socket errors: (.*)", text)
            errors.append(m.group(1) if m else "")
        log(f"{impl.name} others={others}: {statistics.median(rates):.0f} conn/s")
        return {"rates": rates, "errors": errors}
    finally:
        ctx.procs.stop_all()
        impl.close()


# (4) TCP throughput, measured in pairs: the backend's topology and the
# reference topology stand side by side in two sandboxes, and the
# orchestrator runs one path on each in turn (see bench.py), so that both
# runs of a pair see the same minute of this shared machine.


def iperf_run(argv, seconds):
    """Gbit/s received, and the CPU time of the client and of the server
    (percent of the run's wall time, softirq work done in their context
    included)."""
    end = json.loads(nsutil.run(argv + ["-t", str(seconds), "-J"]))["end"]
    cpu = end["cpu_utilization_percent"]
    return end["sum_received"]["bits_per_second"] / 1e9, cpu["host_total"], cpu["remote_total"]


def wait_listening(ns, port):
    def listening():
        text = nsutil.run(nsutil.in_ns(ns, ["ss", "-Hltn", f"sport = :{port}"]), check=False)
        return bool(text.strip())

    nsutil.wait_until(listening, what=f"a listener on port {port}")


class IperfTopology:
    """A backend's network with two containers: `a` runs the iperf3 server
    and publishes host port 15201 to it, `b` is a client on the same bridge."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.impl = impl = ctx.impl()
        try:
            impl.create_network()
            cmd = ["iperf3", "-s", "-p", "5201"]
            a = impl.container([(15201, 5201, 1)], command=cmd)
            b = impl.container([])
            impl.setup(a)
            impl.setup(b)
            if isinstance(impl, impls.PontRun):
                impl.inspect(a)
            serve(ctx, impl, a, cmd)
            wait_listening(impl.netns_of(a), 5201)
            self.paths = {
                "c2c": nsutil.in_ns(impl.netns_of(b), ["iperf3", "-c", a.ip, "-p", "5201"]),
                "host-published": ["iperf3", "-c", HOST_IP, "-p", "15201"],
                "lan-published": ctx.in_lan(["iperf3", "-c", HOST_IP, "-p", "15201"]),
            }
        except BaseException:
            self.close()
            raise

    def stage(self, name):
        """Nothing changes between stages here: the backend's rules are the subject."""

    def close(self):
        self.ctx.procs.stop_all()
        self.impl.close()


ONE_DNAT_RULE = """table ip bench_ref {
    chain pre { type nat hook prerouting priority dstnat; ip daddr 192.0.2.1 tcp dport 15201 dnat to 10.91.0.2:5201; }
    chain out { type nat hook output priority -100; ip daddr 192.0.2.1 tcp dport 15201 dnat to 10.91.0.2:5201; }
}
"""


class BareTopology:
    """The reference: the same paths with no firewall at all (a bridge and
    veths made with `ip`, the LAN routed to the containers' subnet) and one
    bare veth pair; at stage "published", one DNAT rule for the
    published-port paths (so conntrack and NAT, but no backend's rules).
    That rule comes last: a NAT hook turns conntrack on for every path."""

    def __init__(self, ctx):
        self.ctx = ctx
        ns = os.path.join(ctx.tmp, "ns")
        os.makedirs(ns, exist_ok=True)
        self.pinned = []
        try:
            self._make(ns)
        except BaseException:
            self.close()
            raise

    def _make(self, ns):
        a, b, p1, p2 = (os.path.join(ns, f"bare-{x}") for x in ("a", "b", "p1", "p2"))
        for path in (a, b, p1, p2):
            nsutil.create_pinned(path)
            self.pinned.append(path)
        ip = lambda *args: nsutil.run(["ip"] + list(args))  # noqa: E731
        inside = lambda path, *args: nsutil.run(nsutil.in_ns(path, ["ip"] + list(args)))  # noqa: E731
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
        ip("link", "add", "bbr0", "type", "bridge")
        ip("addr", "add", "10.91.0.1/16", "dev", "bbr0")
        ip("link", "set", "bbr0", "up")
        for n, path in ((2, a), (3, b)):
            ip("link", "add", f"bveth{n}", "type", "veth", "peer", "name", "eth0", "netns", path)
            ip("link", "set", f"bveth{n}", "master", "bbr0", "up")
            inside(path, "addr", "add", f"10.91.0.{n}/16", "dev", "eth0")
            inside(path, "link", "set", "eth0", "up")
            inside(path, "link", "set", "lo", "up")
            inside(path, "route", "add", "default", "via", "10.91.0.1")
        nsutil.run(self.ctx.in_lan(["ip", "route", "add", "10.91.0.0/16", "via", HOST_IP]))
        inside(p1, "link", "add", "ref0", "type", "veth", "peer", "name", "ref1", "netns", p2)
        inside(p1, "addr", "add", "10.92.0.1/30", "dev", "ref0")
        inside(p2, "addr", "add", "10.92.0.2/30", "dev", "ref1")
        inside(p1, "link", "set", "ref0", "up")
        inside(p2, "link", "set", "ref1", "up")
        self.ctx.procs.start(nsutil.in_ns(a, ["iperf3", "-s", "-p", "5201"]))
        self.ctx.procs.start(nsutil.in_ns(p2, ["iperf3", "-s", "-p", "5201"]))
        wait_listening(a, 5201)
        wait_listening(p2, 5201)
        self.paths = {
            "veth-pair": nsutil.in_ns(p1, ["iperf3", "-c", "10.92.0.2", "-p", "5201"]),
            "c2c": nsutil.in_ns(b, ["iperf3", "-c", "10.91.0.2", "-p", "5201"]),
            "host-direct": ["iperf3", "-c", "10.91.0.2", "-p", "5201"],
            "lan-direct": self.ctx.in_lan(["iperf3", "-c", "10.91.0.2", "-p", "5201"]),
            "host-published": ["iperf3", "-c", HOST_IP, "-p", "15201"],
            "lan-published": self.ctx.in_lan(["iperf3", "-c", HOST_IP, "-p", "15201"]),
        }

    def stage(self, name):
        if name == "published":
            nsutil.run(["nft", "-f", "-"], stdin=ONE_DNAT_RULE)

    def close(self):
        self.ctx.procs.stop_all()
        for path in self.pinned:
            nsutil.release(path)


def iperf_session(ctx):
    """The topology of `impl` ("bare": the reference), for a session that
    then runs one path at a time: {"op": "run", "path", "seconds"} and
    {"op": "stage", "name"}."""
    return BareTopology(ctx) if ctx.p["impl"] == "bare" else IperfTopology(ctx)


def iperf_call(topo, msg):
    if msg["op"] == "run":
        gbps, client_cpu, server_cpu = iperf_run(topo.paths[msg["path"]], msg["seconds"])
        return {"gbps": gbps, "cpu": [client_cpu, server_cpu]}
    if msg["op"] == "stage":
        topo.stage(msg["name"])
        return {}
    raise ValueError(f"iperf session: unknown op {msg['op']!r}")


# (5) a range of 10000 published ports


def host_processes():
    """Processes in the sandbox host, pont's keeper aside: it lingers for
    150 ms after a command that deleted rules (see nfnl/keeper.rs), whatever
    the number of ports, and would make the count depend on timing."""
    pids = nsutil.processes_in_netns(os.readlink("/proc/self/ns/net"))
    return sum(1 for pid in pids if nsutil.comm(pid) != "pont-keeper")


def range_ports(ctx):
    impl = ctx.impl()
    runs = ctx.p["runs"]
    spec = impls.spec(RANGE_START, RANGE_START, RANGE_LEN)
    out = {k: [] for k in ("add_ms", "rm_ms", "slab_kb", "procs")}
    try:
        impl.create_network()
        anchor = impl.container([])
        impl.setup(anchor)
        if not isinstance(impl, impls.PontRun):
            out["one_port_add_ms"], out["one_port_rm_ms"] = [], []
        for _ in range(runs):
            procs0, slab0 = host_processes(), nsutil.meminfo_kb()["Slab"]
            if isinstance(impl, impls.PontRun):
                out["add_ms"].append(impl.port_add(anchor, [spec]))
            else:
                c = impl.container([(RANGE_START, RANGE_START, RANGE_LEN)])
                out["add_ms"].append(impl.setup(c))
            out["procs"].append(host_processes() - procs0)
            out["slab_kb"].append(nsutil.meminfo_kb()["Slab"] - slab0)
            if isinstance(impl, impls.PontRun):
                out["rm_ms"].append(impl.port_rm(anchor, [spec]))
            else:
                out["rm_ms"].append(impl.teardown(c))
                # The same container with one port: what the range itself adds.
                one = impl.container([(RANGE_START, RANGE_START, 1)])
                out["one_port_add_ms"].append(impl.setup(one))
                out["one_port_rm_ms"].append(impl.teardown(one))
        return out
    finally:
        impl.close()


# Profiles: processes, netlink messages and fsyncs per setup and teardown


TRACED = "execve,sendmsg,sendto,fsync,fdatasync"


def count_trace(files):
    counts = {"processes": 0, "netlink_sends": 0, "fsyncs": 0}
    for path in files:
        with open(path) as f:
            for line in f:
                ok = not re.search(r"= -1 ", line)
                if " execve(" in line and ok:
                    counts["processes"] += 1
                elif re.search(r" send(msg|to)\(", line) and ok:
                    counts["netlink_sends"] += 1
                elif re.search(r" f(data)?sync\(", line):
                    counts["fsyncs"] += 1
        os.unlink(path)
    return counts


def profile(ctx):
    """strace -f of one setup and one teardown with `existing` containers in place.

    Sends are counted on every socket; these tools send on nothing but netlink
    sockets (and the pipes of a CNI plugin's result do not count: writes)."""
    impl = ctx.impl()
    try:
        impl.create_network()
        for i in range(ctx.p["existing"]):
            impl.setup(impl.container([(LATENCY_PORT_BASE + i, 80, 1)]))
        c = impl.container([(PROBE_PORT, 80, 1)])
        out = {}
        for phase, fn in (("setup", impl.setup), ("teardown", impl.teardown)):
            prefix = os.path.join(ctx.tmp, f"strace-{phase}")
            nsutil.TRACE = ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-o"], prefix
            try:
                fn(c)
            finally:
                files = nsutil.trace_files()
                nsutil.TRACE = None
            out[phase] = count_trace(files)
        return out
    finally:
        impl.close()


TASKS = {
    "latency": latency,
    "kth": kth,
    "conn": conn,
    "range": range_ports,
    "profile": profile,
}


# Tasks run step by step in a session: (make the topology, answer one call).
SESSIONS = {"iperf": (iperf_session, iperf_call)}


def main(params):
    ctx = Ctx(params)
    t0 = time.monotonic()
    result = TASKS[params["task"]](ctx)
    return {"result": result, "seconds": time.monotonic() - t0}


def session(params, requests, reply):
    """Make the session's topology, reply with its paths, then answer each
    request until "close" or the end of input; the topology is removed in
    every case."""
    make, call = SESSIONS[params["task"]]
    topo = make(Ctx(params))
    try:
        reply({"paths": list(topo.paths)})
        for msg in requests:
            if msg["op"] == "close":
                break
            reply(call(topo, msg))
    finally:
        topo.close()
