"""Test harness: starts real sheep, tgtd and clients on loopback and stops every process it started.

Every process goes through Procs, which records it and stops it by PID (SIGTERM, then SIGKILL
after a bounded wait) when the test ends, also on failure. Loops are bounded in time.
"""
import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("KELPIE_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SHEEP = os.path.join(BIN, "sheep")
DOG = os.path.join(BIN, "dog")
KELPIE_ISCSI = os.path.join(BIN, "kelpie-iscsi")
ISCSI_CHECK = os.path.join(BIN, "iscsi_check")
IQN_PREFIX = "iqn.2026-11.io.kelpie"


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(lo=7000, hi=9999, taken=()):
    """A free loopback port in [lo, hi]. Sheep ports stay below 10000: tgtd can't reach others."""
    for _ in range(200):
        p = random.randint(lo, hi)
        if p not in taken and port_is_free(p):
            return p
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def wait_until(pred, timeout, what, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Procs:
    """Processes started by a test; all stopped by PID at the end."""

    def __init__(self):
        self.procs = []
        atexit.register(self.stop_all)

    def start(self, args, log_path, **kw):
        with open(log_path, "ab") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, **kw)
        p.log_path = log_path
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=5):
        if p.poll() is not None:
            return
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass

    @staticmethod
    def kill9(p):
        if p.poll() is None:
            p.kill()
        p.wait(5)

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)
        self.procs = []


class Cluster:
    """N sheep on the local driver (own shm file), each in its own zone."""

    def __init__(self, procs, workdir, nodes=3, copies=3, fmt=True):
        self.procs = procs
        self.workdir = workdir
        self.shm = os.path.join(workdir, "shm")
        self.ports = []
        self.sheep = {}
        taken = set()
        for i in range(nodes):
            port = free_port(7000, 9999, taken)
            taken.add(port)
            self.ports.append(port)
        for i in range(nodes):
            self.start_node(i)
        self.wait_nodes(nodes)
        if fmt:
            self.dog_ok("cluster", "format", "-c", str(copies))

    def node_args(self, i):
        d = os.path.join(self.workdir, "sheep%d" % i)
        return [SHEEP, "-f", "-p", str(self.ports[i]), "-z", str(i + 1), "-c", "local:" + self.shm, d]

    def start_node(self, i):
        log = os.path.join(self.workdir, "sheep%d.out" % i)
        self.sheep[i] = self.procs.start(self.node_args(i), log)
        port = self.ports[i]
        wait_until(lambda: self.dog(["node", "list"], port=port).returncode == 0, 30, "sheep %d to serve" % i)

    def kill9(self, i):
        Procs.kill9(self.sheep[i])

    def node_count(self, port=None):
        r = self.dog(["-r", "node", "list"], port=port)
        return len(r.stdout.splitlines()) if r.returncode == 0 else -1

    def wait_nodes(self, n, port=None, timeout=30):
        wait_until(lambda: self.node_count(port) == n, timeout, "%d nodes" % n)

    def wait_recovery(self, timeout=120):
        last = []

        def done():
            r = self.dog(["-r", "node", "recovery"])
            last[:] = [r.returncode, r.stdout, r.stderr]
            return r.returncode == 0 and r.stdout.strip() == b""
        try:
            wait_until(done, timeout, "recovery to finish", 0.3)
        except AssertionError as e:
            raise AssertionError("%s; last dog node recovery: %r" % (e, last))

    def dog(self, args, port=None, input=None, timeout=300):
        port = port or self.ports[0]
        cmd = [DOG] + list(args[:1]) + list(args[1:]) + ["-p", str(port)]
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)

    def dog_ok(self, *args, port=None, input=None):
        r = self.dog(list(args), port=port, input=input)
        if r.returncode != 0:
            raise AssertionError("dog %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                             r.stderr.decode(errors="replace")))
        return r.stdout


class Tgtd:
    """Debian's tgtd on its own control port and portal, exporting one LU as LUN 1 of tid 1."""

    def __init__(self, procs, workdir, name="tgtd"):
        self.procs = procs
        self.portal = free_port(20000, 29999)
        for _ in range(20):
            self.ctl = random.randint(100, 999)
            if not os.path.exists("/var/run/tgtd/socket.%d" % self.ctl):
                break
        log = os.path.join(workdir, "%s.out" % name)
        self.proc = procs.start(["tgtd", "-f", "-C", str(self.ctl), "--iscsi",
                                 "portal=127.0.0.1:%d" % self.portal], log)
        wait_until(lambda: self.adm("--op", "show", "--mode", "target", check=False).returncode == 0,
                   20, "tgtd to start")

    def adm(self, *args, check=True):
        r = subprocess.run(["tgtadm", "-C", str(self.ctl), "--lld", "iscsi"] + list(args),
                           capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("tgtadm %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
        return r

    def export(self, iqn, backing, bstype=None, params=None):
        self.adm("--op", "new", "--mode", "target", "--tid", "1", "-T", iqn)
        lu = ["--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", backing]
        if bstype:
            lu += ["--bstype", bstype]
        self.adm(*lu)
        if params:
            self.adm("--op", "update", "--mode", "logicalunit", "--tid", "1", "--lun", "1",
                     "--params", params)
        self.adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        self.iqn = iqn
        return self.url()

    def url(self):
        return "iscsi://127.0.0.1:%d/%s/1" % (self.portal, self.iqn)

    def stop(self):
        # tgtd ignores SIGTERM while it has targets: ask it to exit, then make sure.
        self.adm("--op", "delete", "--mode", "system", "--force", check=False)
        Procs.stop(self.proc, timeout=3)


class KelpieIscsi:
    """kelpie-iscsi on its own loopback portal, a client of the given sheep (tried in order)."""

    def __init__(self, procs, workdir, sheep_ports, exports=(), export_all=False, chap=None,
                 mutual_chap=None, name="kelpie-iscsi", extra=()):
        self.procs = procs
        self.port = free_port(20000, 29999)
        args = [KELPIE_ISCSI, "-f", "--listen", "127.0.0.1:%d" % self.port,
                "--sheep", ",".join("127.0.0.1:%d" % p for p in sheep_ports)]
        for e in exports:
            args += ["--export", e]
        if export_all:
            args.append("--export-all")
        if chap:
            args += ["--chap", chap]
        if mutual_chap:
            args += ["--mutual-chap", mutual_chap]
        args += list(extra)
        self.args, self.log, self.name = args, os.path.join(workdir, "%s.out" % name), name
        self.start()

    def start(self):
        """(Re)starts the target on its portal (after stop() or kill9())."""
        self.proc = self.procs.start(self.args, self.log)
        wait_until(self.accepting, 20, "%s to listen" % self.name)

    def kill9(self):
        Procs.kill9(self.proc)

    def accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError("kelpie-iscsi exited with %s" % self.proc.returncode)
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def url(self, vdi, user=None, secret=None):
        cred = "%s%%%s@" % (user, secret) if user else ""
        return "iscsi://%s127.0.0.1:%d/%s:%s/0" % (cred, self.port, IQN_PREFIX, vdi)

    def stop(self):
        Procs.stop(self.proc)


def qemu_io(url, *cmds, timeout=120, allow_timeout=False):
    """Runs qemu-io; returns (exit code, output). allow_timeout: a run that outlives `timeout`
    is killed and returns (None, what it printed so far) instead of raising."""
    args = ["qemu-io", "-f", "raw"]
    for c in cmds:
        args += ["-c", c]
    try:
        r = subprocess.run(args + [url], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        if not allow_timeout:
            raise
        return None, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(
            errors="replace")
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def iscsi_test_cu(urls, test="SCSI", timeout=1200):
    """Runs libiscsi's compliance suite; returns (passed, failed, total, output)."""
    r = subprocess.run(["iscsi-test-cu", "--test=" + test, "--dataloss"] + list(urls),
                       capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    m = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    if not m:
        raise AssertionError("no Run Summary from iscsi-test-cu:\n" + out[-3000:])
    total, ran, passed, failed = map(int, m.groups())
    return passed, failed, total, out


class Workdir:
    """A temporary directory; kept (and its logs printed) when the test failed."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix="kelpie-%s-" % name)

    def dump_logs(self, limit=40):
        for root, _dirs, files in os.walk(self.path):
            for f in files:
                if f.endswith(".out") or f == "sheep.log":
                    p = os.path.join(root, f)
                    with open(p, errors="replace") as fh:
                        lines = fh.readlines()[-limit:]
                    print("==== %s (last %d lines)" % (p, len(lines)))
                    print("".join(lines))

    def cleanup(self, failed):
        if failed:
            self.dump_logs()
            print("logs kept in", self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


class KelpieTest:
    """Mixin for unittest.TestCase: a workdir and a process registry per test."""

    def setUp(self):
        self.work = Workdir(self.id().split(".")[-1])
        self.procs = Procs()

    def tearDown(self):
        self.procs.stop_all()
        failed = False
        outcome = getattr(self, "_outcome", None)
        if outcome is not None:
            result = getattr(outcome, "result", None)
            if result is not None:
                failed = any(t is self for t, _ in result.failures + result.errors)
            errors = getattr(outcome, "errors", None)
            if errors:
                failed = failed or any(exc for _, exc in errors)
        self.work.cleanup(failed)


# --- ZooKeeper and several hosts (the zookeeper membership driver) ---------------------------

ZK_SERVER = "/usr/share/zookeeper/bin/zkServer.sh"


def netns_prefix(netns):
    """The command prefix that runs a program inside network namespace `netns` (none: here)."""
    return ["ip", "netns", "exec", netns] if netns else []


class ZooKeeper:
    """Debian's ZooKeeper server, standalone, with its own config and data under workdir, on
    addr:port (optionally inside a network namespace). Stopped by PID; restartable on the same
    data (sessions survive a restart within their timeout)."""

    def __init__(self, procs, workdir, addr="127.0.0.1", port=None, netns=None, name="zk"):
        self.procs = procs
        self.addr = addr
        self.port = port or free_port(20000, 29999)
        self.netns = netns
        self.dir = os.path.join(workdir, name)
        self.log = os.path.join(workdir, "%s.out" % name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            # tickTime 1 s lets sessions be as short as 2 s (ZooKeeper allows 2-20 ticks).
            f.write("tickTime=1000\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\n"
                    "admin.enableServer=false\nmaxClientCnxns=0\n4lw.commands.whitelist=srvr\n"
                    % (os.path.join(self.dir, "data"), self.port, addr))
        self.proc = None
        self.start()

    @staticmethod
    def available():
        return os.path.exists(ZK_SERVER) and shutil.which("java") is not None

    def start(self, timeout=40):
        env = dict(os.environ, ZOOCFGDIR=self.dir, ZOO_LOG_DIR=self.dir,
                   JVMFLAGS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
        args = netns_prefix(self.netns) + [ZK_SERVER, "start-foreground", self.cfg]
        self.proc = self.procs.start(args, self.log, env=env)
        wait_until(self.serving, timeout, "ZooKeeper on %s:%d" % (self.addr, self.port), 0.2)

    def serving(self):
        if self.proc.poll() is not None:
            raise AssertionError("ZooKeeper exited with %s; see %s"
                                 % (self.proc.returncode, self.log))
        probe = ("import socket\ns=socket.create_connection(('%s',%d),1)\ns.sendall(b'srvr')\n"
                 "print(s.recv(4096).decode(errors='replace'))" % (self.addr, self.port))
        r = subprocess.run(netns_prefix(self.netns) + ["python3", "-c", probe],
                           capture_output=True, timeout=10)
        return r.returncode == 0 and b"Mode:" in r.stdout

    def spec(self, timeout=5):
        """sheep's -c option for this server."""
        return "zookeeper:%s:%d,timeout=%d" % (self.addr, self.port, timeout)

    def kill9(self):
        Procs.kill9(self.proc)

    def stop(self):
        Procs.stop(self.proc)


class ZkCluster(Cluster):
    """N sheep on the zookeeper driver (-c SPEC), each in its own zone. With `hosts`, a list of
    (netns, addr) pairs, sheep i listens on addr i inside namespace i, and dog runs there too."""

    def __init__(self, procs, workdir, spec, nodes=3, copies=3, fmt=True, hosts=None):
        self.spec = spec
        self.hosts = hosts
        super().__init__(procs, workdir, nodes=nodes, copies=copies, fmt=fmt)

    def host(self, i):
        return self.hosts[i] if self.hosts else (None, "127.0.0.1")

    def node_args(self, i):
        netns, addr = self.host(i)
        d = os.path.join(self.workdir, "sheep%d" % i)
        return netns_prefix(netns) + [SHEEP, "-f", "-b", addr, "-p", str(self.ports[i]),
                                      "-z", str(i + 1), "-c", self.spec, d]

    def dog(self, args, port=None, input=None, timeout=300):
        port = port or self.ports[0]
        known = port in self.ports
        netns, addr = self.host(self.ports.index(port)) if known else (None, "127.0.0.1")
        cmd = netns_prefix(netns) + [DOG] + list(args) + ["-a", addr, "-p", str(port)]
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)

    def add_node(self):
        """Starts one more sheep (same spec; loopback only); returns its index."""
        self.ports.append(free_port(7000, 9999, set(self.ports)))
        i = len(self.ports) - 1
        self.start_node(i)
        return i

    def object_files(self, i):
        """Object files sheep i holds (its live copies)."""
        d = os.path.join(self.workdir, "sheep%d" % i, "obj")
        return [f for f in os.listdir(d) if not f.startswith(".")] if os.path.isdir(d) else []


class NetHosts:
    """Simulated hosts: n network namespaces, each with eth0 at 10.A.B.(i+1)/24 on a veth pair whose
    other end is port i of a bridge in one more namespace (the switch), so nothing is added to, or
    filtered by, this host's own network. Names are unique per run; remove() (also run at exit)
    deletes the namespaces and with them every link. cut(i)/heal(i) take host i's port down/up."""

    def __init__(self, n):
        tag = "%05x" % random.randrange(16 ** 5)
        self.switch = "kelpie-%s-sw" % tag
        self.ns = ["kelpie-%s-%d" % (tag, i) for i in range(n)]
        self.ports = ["port%d" % i for i in range(n)]
        net = "10.%d.%d" % (random.randint(100, 250), random.randint(0, 255))
        self.addrs = ["%s.%d" % (net, i + 1) for i in range(n)]
        self.removed = False
        atexit.register(self.remove)
        try:
            self._ip("netns", "add", self.switch)
            self._ip("-n", self.switch, "link", "add", "name", "br0", "type", "bridge")
            self._ip("-n", self.switch, "link", "set", "br0", "up")
            for i in range(n):
                ns, port = self.ns[i], self.ports[i]
                self._ip("netns", "add", ns)
                self._ip("-n", self.switch, "link", "add", "name", port, "type", "veth",
                         "peer", "name", "eth0", "netns", ns)
                self._ip("-n", self.switch, "link", "set", port, "master", "br0")
                self._ip("-n", self.switch, "link", "set", port, "up")
                self._ip("-n", ns, "addr", "add", self.addrs[i] + "/24", "dev", "eth0")
                self._ip("-n", ns, "link", "set", "eth0", "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except Exception:
            self.remove()
            raise

    @staticmethod
    def _ip(*args, check=True):
        r = subprocess.run(["ip"] + list(args), capture_output=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
        return r

    @staticmethod
    def unsupported():
        """Why namespaces, veth pairs and bridges cannot be used here, or None when they can."""
        if shutil.which("ip") is None:
            return "the ip command (iproute2) is missing"
        probe = "kelpie-probe-%05x" % random.randrange(16 ** 5)
        try:
            NetHosts._ip("netns", "add", probe)
        except RuntimeError as e:
            return "cannot create a network namespace (%s)" % str(e).strip()
        try:
            NetHosts._ip("-n", probe, "link", "add", "name", "br0", "type", "bridge")
            NetHosts._ip("-n", probe, "link", "add", "name", "a", "type", "veth",
                         "peer", "name", "b")
        except RuntimeError as e:
            return "cannot create a bridge or a veth pair (%s)" % str(e).strip()
        finally:
            NetHosts._ip("netns", "del", probe, check=False)
        return None

    def hosts(self):
        return list(zip(self.ns, self.addrs))

    def cut(self, i):
        self._ip("-n", self.switch, "link", "set", self.ports[i], "down")

    def heal(self, i):
        self._ip("-n", self.switch, "link", "set", self.ports[i], "up")

    def remove(self):
        if self.removed:
            return
        self.removed = True
        for ns in self.ns + [self.switch]:
            self._ip("netns", "del", ns, check=False)  # takes its links along


def closed_by_peer(sock, send_slowly=b"", wait=10):
    """Sends `send_slowly` one byte a second (a slow-loris peer); True once the other end closed
    the connection — during that, or within `wait` seconds after the last byte."""
    sock.settimeout(1)
    for b in send_slowly:
        try:
            sock.sendall(bytes([b]))
            if sock.recv(1) == b"":
                return True
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
