"""The tables: from the results of one run to markdown (stdout and docs/benchmarks.md).

Every figure of a backend is also given as a ratio to the peer measured in
the same run (netavark unless said otherwise), since these machines are
shared and their absolute speed varies from hour to hour.
"""

from .stats import first_last, fmt, fmt_ratio, median, median_ci, ratio, with_spread

LABELS = {
    "pont-nftables": "pont (nftables)",
    "pont-iptables": "pont (iptables)",
    "pont-run-nftables": "pont run -d / rm -f (nftables)",
    "pont-run-iptables": "pont run -d / rm -f (iptables)",
    "netavark": "netavark 1.4 (iptables)",
    "cni": "CNI bridge+portmap (iptables)",
    "bare": "no firewall (reference)",
}
PONT = ("pont-nftables", "pont-iptables")
PEER = "netavark"


# Where pont run -d containers only host the measurement, the figure is of `pont port add/rm`.
PORT_CMD = {
    "pont-run-nftables": "pont port add / rm (nftables)",
    "pont-run-iptables": "pont port add / rm (iptables)",
}


def label(name, port_cmd=False):
    if port_cmd and name in PORT_CMD:
        return PORT_CMD[name]
    return LABELS.get(name, name)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# (1) latency


def latency_summary(runs):
    """Per repeat: medians of the first and last 10, totals; lists over repeats."""
    s = {k: [] for k in ("setup_first", "setup_last", "setup_total", "td_first", "td_last", "td_total")}
    for r in runs:
        f, l = first_last(r["setup_ms"])
        s["setup_first"].append(f)
        s["setup_last"].append(l)
        s["setup_total"].append(sum(r["setup_ms"]) / 1000)
        f, l = first_last(r["teardown_ms"])
        s["td_first"].append(f)
        s["td_last"].append(l)
        s["td_total"].append(sum(r["teardown_ms"]) / 1000)
    return s


def latency_tables(res, n):
    sums = {impl: latency_summary(runs) for impl, runs in res.items()}
    peer = sums.get(PEER)
    out = []
    for phase, key in (("Setup", "setup"), ("Teardown", "td")):
        rows = []
        for impl, s in sums.items():
            f, l = median(s[f"{key}_first"]), median(s[f"{key}_last"])
            pf = median(peer[f"{key}_first"]) if peer else float("nan")
            pl = median(peer[f"{key}_last"]) if peer else float("nan")
            rows.append(
                [
                    label(impl),
                    with_spread(s[f"{key}_first"]),
                    fmt_ratio(ratio(f, pf)),
                    with_spread(s[f"{key}_last"]),
                    fmt_ratio(ratio(l, pl)),
                    fmt_ratio(ratio(l, f)),
                    with_spread(s[f"{key}_total"], 2),
                ]
            )
        out.append(
            f"**{phase}, ms per container** ({n} containers, one published TCP port each)\n\n"
            + table(
                [
                    "backend",
                    "containers 1-10",
                    "vs netavark",
                    f"containers {n - 9}-{n}",
                    "vs netavark",
                    "last/first",
                    "total, s",
                ],
                rows,
            )
        )
    return "\n\n".join(out), sums


def steps_table(res):
    """Where pont's own time goes (pont-bench's step timings, medians)."""
    rows = []
    for impl in PONT:
        for r in res.get(impl, [])[:1]:
            for phase in ("setup", "teardown"):
                steps = r.get(f"steps_{phase}_us")
                if not steps:
                    continue
                for part, sl in (("first 10", steps[:10]), ("last 10", steps[-10:])):
                    names = list(sl[0].keys())
                    cells = [f"{k} {median([s[k] for s in sl]) / 1000:.2f}" for k in names]
                    rows.append([label(impl), phase, part, ", ".join(cells)])
    if not rows:
        return ""
    return "**Inside pont's attach and detach, ms per step** (first repeat)\n\n" + table(
        ["backend", "phase", "containers", "steps (ms)"], rows
    )


# (2) k-th mapping


def kth_table(res):
    ks = sorted({int(k) for r in res.values() for k in r}, key=int)
    peer = res.get(PEER, {})
    rows = []
    for impl, r in res.items():
        cells = [label(impl, port_cmd=True)]
        for k in ks:
            xs = r.get(str(k), {}).get("add_ms", [])
            px = peer.get(str(k), {}).get("add_ms", [])
            cells.append(f"{with_spread(xs)} {fmt_ratio(ratio(median(xs), median(px)))}")
        first = median(r.get(str(ks[0]), {}).get("add_ms", []))
        last = median(r.get(str(ks[-1]), {}).get("add_ms", []))
        cells.append(fmt_ratio(ratio(last, first)))
        rows.append(cells)
    return (
        "**Adding the k-th published port, ms** (a container with one port set up while k-1 other "
        "mappings exist; for `pont port add`, one port added to a running container; "
        "×: vs netavark at the same k)\n\n"
        + table(["backend"] + [f"k = {k}" for k in ks] + [f"k={ks[-1]} / k={ks[0]}"], rows)
    )


def kth_rm_table(res):
    ks = sorted({int(k) for r in res.values() for k in r}, key=int)
    rows = [
        [label(impl, port_cmd=True)] + [with_spread(r.get(str(k), {}).get("rm_ms", [])) for k in ks]
        for impl, r in res.items()
    ]
    return "**Removing it again, ms**\n\n" + table(["backend"] + [f"k = {k}" for k in ks], rows)


# (3) connection rate


def conn_table(res):
    levels = sorted({int(k) for r in res.values() for k in r})
    peer = res.get(PEER, {})
    rows = []
    for impl, r in res.items():
        cells = [label(impl)]
        for lv in levels:
            xs = r.get(str(lv), {}).get("rates", [])
            px = peer.get(str(lv), {}).get("rates", [])
            cells.append(f"{with_spread(xs, 0)} {fmt_ratio(ratio(median(xs), median(px)))}")
        lo = median(r.get(str(levels[0]), {}).get("rates", []))
        hi = median(r.get(str(levels[-1]), {}).get("rates", []))
        cells.append(f"{ratio(hi, lo) * 100:.0f} %" if lo == lo and hi == hi else "–")
        rows.append(cells)
    return (
        "**New TCP connections per second through a published port** (wrk from the LAN neighbour, "
        "`Connection: close`; ×: vs netavark)\n\n"
        + table(
            ["backend"]
            + [f"{lv} other mapping{'' if lv == 1 else 's'}" for lv in levels]
            + [f"{levels[-1]} vs {levels[0]}"],
            rows,
        )
    )


# (4) throughput


IPERF_PATHS = [
    ("veth-pair", "bare veth pair (reference)"),
    ("c2c", "container to container, one bridge"),
    ("host-direct", "host to container address, no firewall, no conntrack"),
    ("host-published", "host to container via published port (reference: one DNAT rule)"),
    ("lan-direct", "LAN to container address, routed, no firewall, no conntrack"),
    ("lan-published", "LAN neighbour to container via published port (reference: one DNAT rule)"),
]


def pair_ratios(pairs):
    """Backend run / reference run of each pair."""
    return [ratio(a, b) for a, b in zip(pairs["own"], pairs["ref"])]


def pair_cpu_ratios(pairs):
    """The same per CPU-second of iperf3's client and server (softirq work
    done in their context included): steadier when the machine is busy,
    since a run that got less CPU moved fewer bits but cost the same per bit."""

    def per_cpu(gbps, cpu):
        return [g / sum(c) for g, c in zip(gbps, cpu)]

    return [ratio(a, b) for a, b in zip(per_cpu(pairs["own"], pairs["own_cpu"]), per_cpu(pairs["ref"], pairs["ref_cpu"]))]


def ratio_with_spread(rs):
    """`×median (min–max)` of per-pair ratios."""
    if not rs:
        return ""
    if len(rs) == 1:
        return fmt_ratio(rs[0])
    return f"{fmt_ratio(median(rs))} ({min(rs):.2f}–{max(rs):.2f})"


def reference_runs(res, path):
    """Every reference run of `path` in the section, over all the pairings."""
    out = []
    for r in res.values():
        out += r["paired"].get(path, {}).get("ref", []) + r["reference"].get(path, [])
    return out


def iperf_label(impl):
    return "reference against itself (A/A)" if impl == "bare" else label(impl)


def iperf_table(res):
    impls = list(res)
    rows = []
    for path, text in IPERF_PATHS:
        cells = [text, with_spread(reference_runs(res, path))]
        for impl in impls:
            pairs = res[impl]["paired"].get(path)
            if not pairs:
                cells.append("")
                continue
            cells.append(f"{with_spread(pairs['own'])} {ratio_with_spread(pair_ratios(pairs))}".strip())
        rows.append(cells)
    return (
        "**TCP throughput, Gbit/s** (iperf3, median of the runs; ×: median of the per-pair ratios, "
        "with their range, where each run of a backend is paired with a run of the same path in a "
        "reference sandbox standing beside it, run right before or after: no firewall, and for "
        "published ports a single DNAT rule; the reference column pools every reference run)\n\n"
        + table(["path", label("bare")] + [iperf_label(i) for i in impls], rows)
    )


def iperf_pairs_table(res):
    """Each pairing on its own: the backend's and its reference's medians, the ratio."""
    rows = []
    for impl, r in res.items():
        for path, text in IPERF_PATHS:
            pairs = r["paired"].get(path)
            if pairs:
                rs = pair_ratios(pairs)
                lo, hi = median_ci(rs)
                rows.append(
                    [
                        iperf_label(impl),
                        path,
                        len(rs),
                        with_spread(pairs["own"]),
                        with_spread(pairs["ref"]),
                        ratio_with_spread(rs),
                        f"{lo:.2f}–{hi:.2f}",
                        ratio_with_spread(pair_cpu_ratios(pairs)),
                    ]
                )
    return (
        "**Throughput pairs, Gbit/s** (each backend with the reference measured beside it; CI: "
        "95 % confidence interval of the median ratio, from the order statistics; per CPU-second: "
        "the ratio of Gbit per CPU-second of iperf3's client and server, which a busy machine "
        "moves less)\n\n"
        + table(
            ["backend", "path", "pairs", "backend", "its reference", "ratio per pair", "CI", "per CPU-second"],
            rows,
        )
    )


# (5) range


def range_table(res):
    rows = []
    for impl, r in res.items():
        extra = ""
        if r.get("one_port_add_ms"):
            extra = f" (one port: {fmt(median(r['one_port_add_ms']))} / {fmt(median(r['one_port_rm_ms']))})"
        rows.append(
            [
                label(impl, port_cmd=True),
                with_spread(r["add_ms"]),
                with_spread(r["rm_ms"]),
                f"{max(r['procs']) if r['procs'] else '–'}",
                with_spread([x / 1024 for x in r["slab_kb"]], 2),
                extra.strip(" ()"),
            ]
        )
    return (
        "**A range of 10000 published ports** (pont: `pont port add/rm` on a running container; "
        "netavark: setup/teardown of a container publishing the range)\n\n"
        + table(
            ["backend", "publish, ms", "remove, ms", "extra processes", "kernel slab Δ, MB (noisy)", "same with one port, ms"],
            rows,
        )
    )


# profile


def profile_table(res, existing):
    rows = []
    for impl, r in res.items():
        for phase in ("setup", "teardown"):
            c = r[phase]
            rows.append([label(impl), phase, c["processes"], c["netlink_sends"], c["fsyncs"]])
    return (
        f"**What one setup and teardown costs in system calls** (strace -f, {existing} containers already attached)\n\n"
        + table(["backend", "phase", "processes run", "netlink sends", "fsyncs"], rows)
    )


# targets


def targets(results):
    """(target, measured, verdict) for each of the issue's targets, per pont backend."""
    out = []
    lat = {impl: latency_summary(runs) for impl, runs in results.get("latency", {}).items()}
    peer = lat.get(PEER)

    def verdict(ok):
        return "met" if ok else "**missed**"

    for impl in PONT:
        s = lat.get(impl)
        if s and peer:
            for key, limit, what in (("setup", 0.2, "setup ≤ 1/5 of netavark"), ("td", 0.1, "teardown ≤ 1/10 of netavark")):
                rf = ratio(median(s[f"{key}_first"]), median(peer[f"{key}_first"]))
                rl = ratio(median(s[f"{key}_last"]), median(peer[f"{key}_last"]))
                out.append(
                    (f"{label(impl)}: {what} at both ends", f"{fmt_ratio(rf)} (first 10), {fmt_ratio(rl)} (last 10)", verdict(rf <= limit and rl <= limit))
                )
            for key, what in (("setup", "setup flat"), ("td", "teardown flat")):
                r = ratio(median(s[f"{key}_last"]), median(s[f"{key}_first"]))
                out.append((f"{label(impl)}: {what} (last 10 ≤ 1.3 × first 10)", fmt_ratio(r), verdict(r <= 1.3)))
    kth = results.get("kth", {})
    for impl in list(PONT) + ["pont-run-nftables", "pont-run-iptables"]:
        r = kth.get(impl)
        if r:
            ks = sorted(int(k) for k in r)
            a, b = median(r[str(ks[0])]["add_ms"]), median(r[str(ks[-1])]["add_ms"])
            out.append((f"{label(impl, True)}: adding mapping {ks[-1]} ≤ 1.5 × mapping {ks[0]}", fmt_ratio(ratio(b, a)), verdict(ratio(b, a) <= 1.5)))
    conn = results.get("conn", {})
    for impl in PONT:
        r = conn.get(impl)
        if r:
            lv = sorted(int(k) for k in r)
            a, b = median(r[str(lv[0])]["rates"]), median(r[str(lv[-1])]["rates"])
            out.append((f"{label(impl)}: connection rate with {lv[-1]} others ≥ 90 % of with {lv[0]}", f"{ratio(b, a) * 100:.0f} %", verdict(ratio(b, a) >= 0.9)))
    ip = results.get("iperf", {})
    for impl in PONT:
        r = ip.get(impl)
        if r:
            for path in ("host-published", "lan-published"):
                rs = pair_ratios(r["paired"][path])
                q, (lo, hi) = median(rs), median_ci(rs)
                what = f"{path} throughput ≥ 95 % of one bare DNAT rule"
                measured = f"{q * 100:.0f} % (CI {lo * 100:.0f}–{hi * 100:.0f} %, {len(rs)} pair{'' if len(rs) == 1 else 's'})"
                # Where the interval holds 95 %, this run cannot tell.
                said = verdict(q >= 0.95) if lo >= 0.95 or hi < 0.95 else "not resolved"
                out.append((f"{label(impl)}: {what}", measured, said))
    rng = results.get("range", {})
    for impl in ("pont-run-nftables", "pont-run-iptables"):
        r = rng.get(impl)
        if r:
            a, b = median(r["add_ms"]), median(r["rm_ms"])
            procs = max(r["procs"])
            mem = median(r["slab_kb"]) / 1024
            out.append((f"{label(impl, True)}: 10000-port range published and removed in < 100 ms", f"{fmt(a)} / {fmt(b)} ms", verdict(a < 100 and b < 100)))
            out.append((f"{label(impl, True)}: range adds no process and < 10 MB", f"{procs} processes, {mem:.2f} MB slab", verdict(procs <= 0 and mem < 10)))
    return out


def targets_table(results):
    rows = targets(results)
    if not rows:
        return ""
    return "**Targets (issue 6)**\n\n" + table(["target", "measured", ""], rows)


def render(results):
    meta = results["meta"]
    parts = [
        f"Run of {meta['date']} on {meta['machine']}, {meta['duration_s'] / 60:.1f} minutes.",
        "Peers and tools: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "Parameters: " + ", ".join(f"{k} {v}" for k, v in meta["params"].items()) + ".",
        "Figures are medians over the repeats (or probes, or runs) with the range (min–max) in brackets.",
    ]
    sections = []
    if "latency" in results:
        text, _ = latency_tables(results["latency"], meta["params"]["containers"])
        sections += ["### 1. Per-container setup and teardown", text]
        st = steps_table(results["latency"])
        if st:
            sections.append(st)
    if "profile" in results:
        present = meta["params"].get("containers present while profiling", 0)
        sections.append(profile_table(results["profile"], present))
    if "kth" in results:
        sections += ["### 2. The k-th port mapping", kth_table(results["kth"]), kth_rm_table(results["kth"])]
    if "conn" in results:
        sections += ["### 3. Connection rate", conn_table(results["conn"])]
    if "iperf" in results:
        sections += ["### 4. Throughput", iperf_table(results["iperf"]), iperf_pairs_table(results["iperf"])]
    if "range" in results:
        sections += ["### 5. A 10000-port range", range_table(results["range"])]
    tt = targets_table(results)
    if tt:
        sections += ["### Targets", tt]
    return "\n\n".join(parts) + "\n\n" + "\n\n".join(sections) + "\n"
