"""The network backends under test, each behind the same small interface.

Every backend gets one network (a bridge with a /16) and containers with
published TCP ports. `setup` and `teardown` return wall milliseconds for the
whole per-container job, namespace included, as each backend's caller would
see it:

- pont (attach): `pont-bench attach` makes the namespace and attaches it
  through pont's engine; `detach` drops it (the kernel removes the veth).
- pont (run -d): `pont run -d ... -- sleep infinity` and `pont rm -f`, end to end.
- netavark: the namespace is made and pinned here (as Podman does), then
  `netavark setup`; teardown is `netavark teardown` and unpinning.
- CNI: the namespace as for netavark, then the bridge plugin (which runs
  host-local) and the portmap plugin with the bridge's result; DEL in
  reverse order.
"""

import hashlib
import json
import os
import re

from . import nsutil

NETAVARK = "/usr/lib/podman/netavark"
CNI_DIR = "/usr/lib/cni"

SUBNETS = {
    "pont": ("10.88.0.0/16", "10.88.0.1"),
    "netavark": ("10.89.0.0/16", "10.89.0.1"),
    "cni": ("10.90.0.0/16", "10.90.0.1"),
}


class Container:
    def __init__(self, impl, index, ports, command=None):
        self.index = index
        self.id = hashlib.sha256(f"{impl.name}-{index}".encode()).hexdigest()
        self.name = f"c{index}"
        self.ports = ports  # [(host_port, container_port, count)]
        self.command = command or ["sleep", "infinity"]
        self.netns = os.path.join(impl.tmp, "ns", f"{impl.name}-{index}")
        self.ip = None
        self.steps = None


def spec(host, cport, count):
    if count == 1:
        return f"{host}:{cport}"
    return f"{host}-{host + count - 1}:{cport}-{cport + count - 1}"


class Impl:
    """Common parts. `name` is unique per backend variant."""

    name = "?"
    label = "?"
    peer = False

    def __init__(self, tmp, bins):
        self.tmp = tmp
        self.bins = bins
        os.makedirs(os.path.join(tmp, "ns"), exist_ok=True)
        self.next_index = 0
        self.others = []  # background containers made by populate()

    def container(self, ports, command=None):
        self.next_index += 1
        return Container(self, self.next_index, ports, command)

    def netns_of(self, c):
        """A path to the container's network namespace, for nsenter."""
        return c.netns

    def close(self):
        pass


class PontAttach(Impl):
    def __init__(self, tmp, bins, backend):
        super().__init__(tmp, bins)
        self.backend = backend
        self.name = f"pont-{backend}"
        self.label = f"pont ({backend})"
        self.root = os.path.join(tmp, f"root-{self.name}")

    def pont(self, *args):
        return nsutil.run([self.bins["pont"], "--root", self.root, "--firewall", self.backend] + list(args))

    def create_network(self):
        self.pont("network", "create", "bench", "--subnet", SUBNETS["pont"][0])

    def _common(self, c):
        return ["--root", self.root, "--firewall", self.backend, "--netns", c.netns, "--id", c.id]

    def _attach(self, c, extra=()):
        argv = [self.bins["pont-bench"], "attach"] + self._common(c) + ["--network", "bench"]
        for host, cport, count in c.ports:
            argv += ["-p", spec(host, cport, count)]
        out = json.loads(nsutil.run(argv + list(extra)))
        c.ip, c.steps = out["ipv4"], out["steps_us"]

    def setup(self, c):
        ms, _ = nsutil.timed(self._attach, c)
        return ms

    def teardown(self, c):
        def detach():
            out = nsutil.run([self.bins["pont-bench"], "detach"] + self._common(c))
            c.steps = json.loads(out)["steps_us"]

        ms, _ = nsutil.timed(detach)
        return ms

    def populate(self, count, start_port):
        """`count` more published ports, one mapping each, on a background container."""
        c = self.container([])
        self._attach(c, ["--many", f"{start_port}-{start_port + count - 1}:80"])
        self.others.append(c)


class PontRun(Impl):
    """`pont run -d` and `pont rm -f`: the whole command, container process included."""

    def __init__(self, tmp, bins, backend):
        super().__init__(tmp, bins)
        self.backend = backend
        self.name = f"pont-run-{backend}"
        self.label = f"pont run -d ({backend})"
        self.root = os.path.join(tmp, f"root-{self.name}")
        self.live = []

    def pont(self, *args, check=True):
        return nsutil.run(
            [self.bins["pont"], "--root", self.root, "--firewall", self.backend] + list(args), check=check
        )

    def create_network(self):
        self.pont("network", "create", "bench", "--subnet", SUBNETS["pont"][0])

    def _run(self, c):
        argv = ["run", "-d", "--name", c.name, "--network", "bench"]
        for host, cport, count in c.ports:
            argv += ["-p", spec(host, cport, count)]
        self.pont(*(argv + ["--"] + c.command))
        self.live.append(c)

    def setup(self, c):
        ms, _ = nsutil.timed(self._run, c)
        return ms

    def teardown(self, c):
        ms, _ = nsutil.timed(self.pont, "rm", "-f", c.name)
        self.live = [x for x in self.live if x is not c]
        return ms

    def inspect(self, c):
        info = json.loads(self.pont("inspect", c.name))
        c.ip = info["networks"]["bench"]["ipv4"].split("/")[0]
        return info

    def netns_of(self, c):
        return f"/proc/{self.inspect(c)['pid']}/ns/net"

    def port_add(self, c, specs):
        return nsutil.timed(self.pont, "port", "add", c.name, *specs)[0]

    def port_rm(self, c, specs):
        return nsutil.timed(self.pont, "port", "rm", c.name, *specs)[0]

    def populate(self, count, start_port, chunk=2000):
        c = self.container([])
        self._run(c)
        for first in range(start_port, start_port + count, chunk):
            last = min(first + chunk, start_port + count)
            self.pont("port", "add", c.name, *[f"{p}:80" for p in range(first, last)])
        self.others.append(c)

    def close(self):
        for c in list(self.live):
            self.pont("rm", "-f", c.name, check=False)
        self.live = []


class IptablesPeer(Impl):
    """What netavark and the CNI plugins share: rules made by one iptables
    process per rule. `populate` therefore does not run the peer thousands of
    times (hours at 10000); it runs it once for a template container and
    clones the exact rules that run wrote, with other ports, in one
    iptables-restore."""

    peer = True

    def __init__(self, tmp, bins):
        super().__init__(tmp, bins)
        self.template = None  # (lines, port, chain names)
        self.clones = 0

    def _nat_lines(self):
        return nsutil.run(["iptables-save", "-t", "nat"]).splitlines()

    def _capture_template(self, port):
        c = self.container([(port, 80, 1)])
        self.setup(c)
        self.others.append(c)
        lines = self._nat_lines()
        owned = self._owned_chains(lines, c, port)
        pattern = re.compile(rf"--dports? {port}\b")
        picked = [
            line
            for line in lines
            if (line.startswith("-A ") and (pattern.search(line) or any(ch in line.split() for ch in owned)))
            or (line.startswith(":") and line[1:].split()[0] in owned)
        ]
        self.template = (picked, port, owned)

    def _owned_chains(self, lines, c, port):
        return set()

    def populate(self, count, start_port):
        if count <= 0:
            return
        if self.template is None:
            self._capture_template(start_port)
            start_port, count = start_port + 1, count - 1
        lines, tport, owned = self.template
        out = ["*nat"]
        decls, rules = [], []
        for port in range(start_port, start_port + count):
            self.clones += 1
            renames = {ch: ch[:-8] + f"{self.clones:08x}" for ch in owned}
            for line in lines:
                new = re.sub(rf"(--dports? ){tport}\b", rf"\g<1>{port}", line)
                for old, fresh in renames.items():
                    new = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", fresh, new)
                (decls if new.startswith(":") else rules).append(new)
        out += decls + rules + ["COMMIT", ""]
        nsutil.run(["iptables-restore", "-w", "--noflush"], stdin="\n".join(out))


class Netavark(IptablesPeer):
    name = "netavark"
    label = "netavark"

    def __init__(self, tmp, bins):
        super().__init__(tmp, bins)
        self.config = os.path.join(tmp, "netavark")
        os.makedirs(self.config, exist_ok=True)
        self.env = dict(os.environ, NETAVARK_FW="iptables")

    def create_network(self):
        pass  # netavark makes the bridge with the first container

    def _options(self, c):
        i = c.index + 1
        c.ip = f"10.89.{i // 250}.{i % 250 + 2}"
        subnet, gw = SUBNETS["netavark"]
        return json.dumps(
            {
                "container_id": c.id,
                "container_name": c.name,
                "port_mappings": [
                    {"host_ip": "", "container_port": cp, "host_port": hp, "range": n, "protocol": "tcp"}
                    for hp, cp, n in c.ports
                ],
                "networks": {"bench": {"interface_name": "eth0", "static_ips": [c.ip]}},
                "network_info": {
                    "bench": {
                        "name": "bench",
                        "id": "b" * 64,
                        "driver": "bridge",
                        "network_interface": "nvbr0",
                        "subnets": [{"subnet": subnet, "gateway": gw}],
                        "ipv6_enabled": False,
                        "internal": False,
                        "dns_enabled": False,
                    }
                },
            }
        )

    def _netavark(self, cmd, c):
        nsutil.run([NETAVARK, "--config", self.config, cmd, c.netns], stdin=self._options(c), env=self.env)

    def setup(self, c):
        def work():
            nsutil.create_pinned(c.netns)
            self._netavark("setup", c)

        return nsutil.timed(work)[0]

    def teardown(self, c):
        def work():
            self._netavark("teardown", c)
            nsutil.release(c.netns)

        return nsutil.timed(work)[0]


class Cni(IptablesPeer):
    name = "cni"
    label = "CNI bridge+portmap"

    def __init__(self, tmp, bins):
        super().__init__(tmp, bins)
        self.ipam_dir = os.path.join(tmp, "cni-ipam")
        self.results = {}

    def create_network(self):
        pass  # the bridge plugin makes the bridge with the first container

    def _conf(self, plugin, c, prev=None):
        base = {"cniVersion": "1.0.0", "name": "bench"}
        if plugin == "bridge":
            base.update(
                type="bridge",
                bridge="cni0",
                isGateway=True,
                ipMasq=True,
                ipam={"type": "host-local", "ranges": [[{"subnet": SUBNETS["cni"][0]}]], "dataDir": self.ipam_dir},
            )
        else:
            base.update(
                type="portmap",
                capabilities={"portMappings": True},
                runtimeConfig={
                    "portMappings": [
                        {"hostPort": hp + k, "containerPort": cp + k, "protocol": "tcp"}
                        for hp, cp, n in c.ports
                        for k in range(n)
                    ]
                },
            )
            if prev is not None:
                base["prevResult"] = prev
        return json.dumps(base)

    def _plugin(self, plugin, command, c, prev=None):
        env = dict(
            os.environ,
            CNI_COMMAND=command,
            CNI_CONTAINERID=c.id,
            CNI_NETNS=c.netns,
            CNI_IFNAME="eth0",
            CNI_PATH=CNI_DIR,
        )
        return nsutil.run([os.path.join(CNI_DIR, plugin)], stdin=self._conf(plugin, c, prev), env=env)

    def setup(self, c):
        def work():
            nsutil.create_pinned(c.netns)
            result = json.loads(self._plugin("bridge", "ADD", c))
            if c.ports:
                result = json.loads(self._plugin("portmap", "ADD", c, result))
            self.results[c.id] = result

        ms = nsutil.timed(work)[0]
        c.ip = self.results[c.id]["ips"][0]["address"].split("/")[0]
        return ms

    def teardown(self, c):
        def work():
            prev = self.results.pop(c.id)
            if c.ports:
                self._plugin("portmap", "DEL", c, prev)
            self._plugin("bridge", "DEL", c, prev)
            nsutil.release(c.netns)

        return nsutil.timed(work)[0]

    def _owned_chains(self, lines, c, port):
        # Chains made for this one container: its DNAT chain and its masquerade chain.
        named = set()
        for line in lines:
            if line.startswith("-A ") and (f'id: \\"{c.id}\\"' in line or f"--dports {port}" in line):
                words = line.split()
                if "-j" in words:
                    target = words[words.index("-j") + 1]
                    if target.startswith("CNI-") and not target.startswith("CNI-HOSTPORT"):
                        named.add(target)
        return named


def make(name, tmp, bins):
    if name.startswith("pont-run-"):
        return PontRun(tmp, bins, name.removeprefix("pont-run-"))
    if name.startswith("pont-"):
        return PontAttach(tmp, bins, name.removeprefix("pont-"))
    return {"netavark": Netavark, "cni": Cni}[name](tmp, bins)
