#!/usr/bin/env python3
"""pont's benchmarks side by side with netavark and the CNI plugins (issue 6).

Run through bench/run.sh, which installs the peers and builds pont first.
Every task runs in a worker inside a fresh sandbox (a host namespace and a LAN
neighbour, see benchlib/sandbox.py) that is removed afterwards; the machine's
own network namespace is never changed. Prints the tables and writes them,
with the date, machine and versions, to docs/benchmarks.md (between the
results markers) and the raw figures to docs/benchmarks.json.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import report, sandbox  # noqa: E402
from benchlib.stats import median  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINS = {
    "pont": os.path.join(REPO, "target", "release", "pont"),
    "pont-bench": os.path.join(REPO, "target", "release", "pont-bench"),
}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SECTIONS = ["latency", "profile", "kth", "conn", "iperf", "range"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--containers", type=int, default=200, help="containers per latency run (default 200)")
    p.add_argument("--repeats", type=int, default=3, help="latency runs of pont and netavark (default 3)")
    p.add_argument(
        "--other-repeats", type=int, default=1, help="latency runs of CNI and of pont run -d (default 1)"
    )
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated backends to run (pont-nftables, pont-iptables, pont-run-nftables, "
        "pont-run-iptables, netavark, cni; throughput always brings its reference, and "
        "bare there pairs the reference with itself); default all but bare",
    )
    p.add_argument(
        "--iperf-pairs",
        type=int,
        default=15,
        help="throughput pairs per path (default 15; more narrow the confidence interval)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat: checks the harness in a minute")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    p.add_argument("--run-id", default=str(os.getpid()), help=argparse.SUPPRESS)
    return p.parse_args()


def plan(args):
    """What each section runs, and with which parameters."""
    q = args.quick
    return {
        "latency": {
            "impls": ["pont-nftables", "pont-iptables", "netavark", "cni", "pont-run-nftables"],
            "n": 20 if q else args.containers,
            "repeats": 1 if q else args.repeats,
            # The slow ones: CNI takes 100 s and pont run -d 60 s per run of 200.
            "fewer": {"cni": 1 if q else args.other_repeats, "pont-run-nftables": 1 if q else args.other_repeats},
        },
        "profile": {"impls": ["pont-nftables", "pont-iptables", "netavark", "cni"], "existing": 5 if q else 20},
        "kth": {
            "impls": ["pont-nftables", "pont-iptables", "pont-run-nftables", "netavark", "cni"],
            "ks": [1, 100, 1000] if q else [1, 100, 1000, 10000],
            "probes": 2 if q else 5,
            # At k = 10000 one netavark setup takes 8 s and one CNI ADD 33 s.
            "peer_probes_at_max": 2,
            "max_k": {"cni": 1000},
        },
        "conn": {
            "impls": ["pont-nftables", "pont-iptables", "netavark"],
            "levels": [1, 1000] if q else [1, 1000, 10000],
            "runs": 1 if q else 3,
            "seconds": 1 if q else 3,
            "connections": 8,
            "threads": 1,
        },
        "iperf": {
            # Each paired with its own reference ("bare"), which is not listed.
            # "bare" (only when asked for with --only) pairs the reference
            # with itself: the spread of its ratios is the method's own.
            "impls": ["pont-nftables", "pont-iptables", "netavark"],
            "optional": ["bare"],
            # Many short pairs: on two shared cores the load drifts within
            # seconds, and 15 pairs of 1 s came out steadier in A/A runs
            # (reference against reference) than 7 of 2 s.
            "pairs": 1 if q else args.iperf_pairs,
            "seconds": 1,
            # Paths only the reference has (informative, not compared).
            "reference_runs": 1 if q else 3,
        },
        "range": {"impls": ["pont-run-nftables", "pont-run-iptables", "netavark"], "runs": 1 if q else 3},
    }


class Runner:
    def __init__(self, args, tmp):
        self.run_id = args.run_id
        self.tmp = tmp
        self.t0 = time.monotonic()

    def task(self, what, params):
        t = time.monotonic()
        print(f"[{time.monotonic() - self.t0:6.0f} s] {what} ...", file=sys.stderr, flush=True)
        with sandbox.Sandbox(self.run_id, self.tmp) as sb:
            out = sb.work(dict(params, bins=BINS))
        print(f"{'':10} done in {time.monotonic() - t:.1f} s", file=sys.stderr, flush=True)
        return out["result"]

    def iperf_pairs(self, impl, ip):
        """`impl`'s topology and the reference's, side by side in two
        sandboxes, measured in alternation (see measure_pairs)."""
        t = time.monotonic()
        print(
            f"[{t - self.t0:6.0f} s] iperf3 {impl} paired with the reference "
            f"({ip['pairs']} pairs × {ip['seconds']} s per path) ...",
            file=sys.stderr,
            flush=True,
        )
        params = {"task": "iperf", "bins": BINS}
        with sandbox.Sandbox(self.run_id, self.tmp) as sa, sandbox.Sandbox(self.run_id, self.tmp) as sb:
            with sa.session(dict(params, impl=impl)) as own, sb.session(dict(params, impl="bare")) as ref:
                out = measure_pairs(own, ref, ip)
        print(f"{'':10} done in {time.monotonic() - t:.1f} s", file=sys.stderr, flush=True)
        return out


IPERF_PAIRED = ["c2c"]  # against the reference without conntrack
IPERF_REFERENCE_ONLY = ["veth-pair", "host-direct", "lan-direct"]
IPERF_PUBLISHED = ["host-published", "lan-published"]  # against one DNAT rule


def measure_pairs(own, ref, ip):
    """Per path, `pairs` runs of the backend (`own`) and of the reference,
    each reference run right before or after its backend run: the order
    alternates, so that neither side is always the one after a pause. The
    machine's load drifts over seconds, so the ratio within a pair is far
    steadier than either figure. {"paired": {path: {"own": [Gbit/s], "ref":
    [Gbit/s], "own_cpu": [[client %, server %]], "ref_cpu": [..]}},
    "reference": {path: [Gbit/s]}}, pairs at the same index."""

    def run(session, path, gbps, cpu):
        r = session.call({"op": "run", "path": path, "seconds": ip["seconds"]})
        gbps.append(r["gbps"])
        cpu.append(r["cpu"])

    def pairs(path):
        r = {"own": [], "ref": [], "own_cpu": [], "ref_cpu": []}
        order = [(own, "own"), (ref, "ref")]
        for i in range(ip["pairs"]):
            for session, side in order if i % 2 == 0 else reversed(order):
                run(session, path, r[side], r[f"{side}_cpu"])
        ratios = sorted(a / b for a, b in zip(r["own"], r["ref"]))
        print(
            f"    {path}: {median(r['own']):.1f} vs {median(r['ref']):.1f} Gbit/s, "
            f"ratio {median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})",
            file=sys.stderr,
            flush=True,
        )
        return r

    out = {"paired": {}, "reference": {}}
    for path in IPERF_PAIRED:
        out["paired"][path] = pairs(path)
    for path in IPERF_REFERENCE_ONLY:
        out["reference"][path] = []
        for _ in range(ip["reference_runs"]):
            run(ref, path, out["reference"][path], [])
    for session in (own, ref):
        session.call({"op": "stage", "name": "published"})
    for path in IPERF_PUBLISHED:
        out["paired"][path] = pairs(path)
    return out


def run_sections(args, runner):
    p = plan(args)
    if args.only:
        only = set(args.only.split(","))
        for section in p.values():
            section["impls"] = [i for i in section["impls"] + section.get("optional", []) if i in only]
    wanted = [s for s in args.sections.split(",") if s]
    for s in wanted:
        if s not in SECTIONS:
            sys.exit(f"bench: unknown section '{s}' (expected some of {','.join(SECTIONS)})")
    results = {}
    if "latency" in wanted:
        lp = p["latency"]
        results["latency"] = {impl: [] for impl in lp["impls"]}
        # Interleaved, so that a noisy minute on a shared machine hits every backend.
        for rep in range(lp["repeats"]):
            for impl in lp["impls"]:
                reps = lp["fewer"].get(impl, lp["repeats"])
                if rep >= reps:
                    continue
                r = runner.task(
                    f"latency {impl} ({lp['n']} containers, repeat {rep + 1}/{reps})",
                    {"task": "latency", "impl": impl, "n": lp["n"]},
                )
                results["latency"][impl].append(r)
    if "profile" in wanted:
        pp = p["profile"]
        results["profile"] = {
            impl: runner.task(f"profile {impl}", {"task": "profile", "impl": impl, "existing": pp["existing"]})
            for impl in pp["impls"]
        }
    if "kth" in wanted:
        kp = p["kth"]
        results["kth"] = {}
        for impl in kp["impls"]:
            ks = [k for k in kp["ks"] if k <= kp["max_k"].get(impl, k)]
            params = {"task": "kth", "impl": impl, "ks": ks, "probes": kp["probes"]}
            if impl in ("netavark", "cni"):
                params["probes_at_max"] = min(kp["probes"], kp["peer_probes_at_max"])
            results["kth"][impl] = runner.task(f"k-th mapping {impl} (k = {ks})", params)
    if "conn" in wanted:
        cp = p["conn"]
        results["conn"] = {impl: {} for impl in cp["impls"]}
        for level in cp["levels"]:
            for impl in cp["impls"]:
                params = {k: cp[k] for k in ("runs", "seconds", "connections", "threads")}
                results["conn"][impl][str(level)] = runner.task(
                    f"connections/s {impl} with {level} other mappings",
                    dict(params, task="conn", impl=impl, others=level),
                )
    if "iperf" in wanted:
        ip = p["iperf"]
        results["iperf"] = {impl: runner.iperf_pairs(impl, ip) for impl in ip["impls"]}
    if "range" in wanted:
        rp = p["range"]
        results["range"] = {
            impl: runner.task(f"10000-port range {impl}", {"task": "range", "impl": impl, "runs": rp["runs"]})
            for impl in rp["impls"]
        }
    return results, p


def sh(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def meta(args, p, seconds):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    osname = "?"
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')

    def deb(pkg):
        return sh(["dpkg-query", "-W", "-f=${Version}", pkg]) or "?"

    versions = {
        "pont": sh(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "netavark": deb("netavark"),
        "containernetworking-plugins": deb("containernetworking-plugins"),
        "nftables": deb("nftables"),
        "iptables": sh(["iptables", "--version"]).replace("iptables ", ""),
        "iperf3": deb("iperf3"),
        "wrk": deb("wrk"),
    }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{osname}, kernel {platform.release()}, {os.cpu_count()} × {cpu}, {mem_gb:.0f} GB",
        "versions": versions,
        "params": {
            "containers": p["latency"]["n"],
            "latency repeats": f"{p['latency']['repeats']} (CNI and pont run -d: {p['latency']['fewer']['cni']})",
            "k-th probes": f"{p['kth']['probes']} (peers at the largest k: {p['kth']['peer_probes_at_max']})",
            "wrk runs": f"{p['conn']['runs']} × {p['conn']['seconds']} s",
            "iperf3 runs": f"{p['iperf']['pairs']} pairs × {p['iperf']['seconds']} s per path, "
            "each backend run next to a reference run",
            "containers present while profiling": p["profile"]["existing"],
        },
        "duration_s": seconds,
    }


def write_docs(text, results):
    path = os.path.join(REPO, "docs", "benchmarks.md")
    with open(path) as f:
        doc = f.read()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    with open(os.path.join(REPO, "docs", "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(f"bench: wrote {path} and docs/benchmarks.json", file=sys.stderr)


def state_dir():
    """Where every backend's state goes: tmpfs, as Podman keeps netavark's
    (/run/containers/networks). On this machine's /tmp (ext4 without a
    journal) creating a file costs more the more files were deleted in the
    last minutes (ext4's recently_deleted inode check), which made the
    setup figures depend on the previous repeat's teardown."""
    for d in ("/dev/shm", "/run"):
        if os.path.isdir(d) and os.statvfs(d).f_bavail * os.statvfs(d).f_frsize > 512 << 20:
            return d
    return None


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (it makes network namespaces); use bench/run.sh")
    # SIGTERM unwinds like Ctrl-C, so every sandbox is removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = tempfile.mkdtemp(prefix=f"pont-bench-{args.run_id}-", dir=state_dir())
    t0 = time.monotonic()
    try:
        results, p = run_sections(args, Runner(args, tmp))
    finally:
        sandbox.remove_leftovers(args.run_id)
        subprocess.run(["rm", "-rf", "--one-file-system", tmp])
    results["meta"] = meta(args, p, time.monotonic() - t0)
    text = report.render(results)
    print(text)
    if not args.no_write:
        write_docs(text, results)


if __name__ == "__main__":
    main()
