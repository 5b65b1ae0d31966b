"""Metrics and deployment: `sheep --metrics` and `kelpie-iscsi --metrics` scraped over HTTP and
parsed as Prometheus text (a strict parser below), counters rising with the I/O done, a malformed
HTTP request leaving the endpoint serving; both daemons started from config files; the systemd
units checked by systemd-analyze."""
import json
import os
import re
import shutil
import socket
import subprocess
import unittest
import urllib.error
import urllib.request

import sdproto

from kelpie_harness import (KELPIE_ISCSI, SHEEP, Cluster, KelpieIscsi, KelpieTest, free_port,
                            qemu_io, wait_until)

MiB = 1 << 20


class MetricsCluster(Cluster):
    """A Cluster whose sheep each serve --metrics on a port of their own."""

    def __init__(self, procs, workdir, **kw):
        self.metrics_ports = {}
        super().__init__(procs, workdir, **kw)

    def node_args(self, i):
        if i not in self.metrics_ports:
            self.metrics_ports[i] = free_port(30000, 39999)
        args = super().node_args(i)
        return args[:-1] + ["--metrics", "127.0.0.1:%d" % self.metrics_ports[i], args[-1]]


# --- Prometheus text format 0.0.4 -------------------------------------------------------------
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_prometheus(text):
    """{(name, frozenset(labels.items())): value}, and {family: type}; raises on any line that is
    not HELP, TYPE or a sample of a family announced by TYPE before it."""
    assert text.endswith("\n"), "exposition must end with a newline"
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert re.match(r"^# HELP %s .*$" % NAME, line), line
            continue
        if line.startswith("# TYPE "):
            m = re.match(r"^# TYPE (%s) (\w+)$" % NAME, line)
            assert m and m.group(2) in TYPES, line
            assert m.group(1) not in types, "family typed twice: " + line
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample before its TYPE: " + line
        v = float(value)  # also accepts +Inf, NaN
        key = (name, frozenset(LABEL_PAIR.findall(labels)))
        assert key not in samples, "duplicate sample: " + line
        samples[key] = v
    for (name, labels), v in samples.items():  # histograms: cumulative buckets, +Inf == count
        if name.endswith("_bucket"):
            base = name[:-len("_bucket")]
            rest = frozenset(l for l in labels if l[0] != "le")
            assert types.get(base) == "histogram", name
            if dict(labels)["le"] == "+Inf":
                assert v == samples[(base + "_count", rest)], name
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        return parse_prometheus(r.read().decode())


def raw_http(port, data):
    """Sends raw bytes, returns the status line (or b"" if the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.split(b"\r\n", 1)[0]


class Metrics(KelpieTest, unittest.TestCase):
    def assert_http_robust(self, port):
        """Malformed and unknown requests are answered 400/404/405 (or the connection dropped),
        and the endpoint serves on."""
        self.assertEqual(raw_http(port, b"GET /nothing HTTP/1.1\r\n\r\n"), b"HTTP/1.1 404 Not Found")
        self.assertEqual(raw_http(port, b"\x00\xff garbage\r\n\r\n"), b"HTTP/1.1 400 Bad Request")
        self.assertEqual(raw_http(port, b"POST /metrics HTTP/1.1\r\n\r\n"),
                         b"HTTP/1.1 405 Method Not Allowed")
        self.assertEqual(raw_http(port, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 20000),
                         b"HTTP/1.1 400 Bad Request")
        self.assertEqual(raw_http(port, b"GET /metr"), b"")   # cut off: just closed
        with socket.create_connection(("127.0.0.1", port)):  # open and silent meanwhile
            scrape(port)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10)
        self.assertEqual(e.exception.code, 404)
        scrape(port)

    def test_sheep_metrics(self):
        c = MetricsCluster(self.procs, self.work.path, nodes=3, copies=2)
        sm = c.metrics_ports[0]
        c.dog_ok("vdi", "create", "v", "64M")
        c.dog_ok("vdi", "create", "n", "8M")
        before, types = scrape(sm)
        self.assertEqual(types["kelpie_sheep_requests_total"], "counter")
        self.assertEqual(types["kelpie_sheep_request_duration_seconds"], "histogram")
        self.assertEqual(types["kelpie_sheep_lock_participants"], "gauge")
        self.assertGreater(value(before, "kelpie_sheep_disk_capacity_bytes"), 0)

        data = os.urandom(3 * MiB)
        c.dog_ok("vdi", "write", "v", "0", input=data)
        self.assertEqual(c.dog_ok("vdi", "read", "v", "0", str(len(data))), data)
        after, _ = scrape(sm)
        rose = lambda name, **l: value(after, name, **l) - value(before, name, **l)
        self.assertGreaterEqual(rose("kelpie_sheep_requests_total", op="WRITE_OBJ") +
                                rose("kelpie_sheep_requests_total", op="CREATE_AND_WRITE_OBJ"), 1)
        self.assertGreaterEqual(rose("kelpie_sheep_request_bytes_total", op="CREATE_AND_WRITE_OBJ") +
                                rose("kelpie_sheep_request_bytes_total", op="WRITE_OBJ"), len(data))
        self.assertGreaterEqual(rose("kelpie_sheep_reply_bytes_total", op="READ_OBJ"), len(data))
        self.assertGreaterEqual(rose("kelpie_sheep_requests_total", op="READ_OBJ"), 1)
        self.assertEqual(rose("kelpie_sheep_request_duration_seconds_count", op="READ_OBJ"),
                         rose("kelpie_sheep_requests_total", op="READ_OBJ"))
        self.assertGreater(rose("kelpie_sheep_request_duration_seconds_sum", op="READ_OBJ"), 0)
        # Objects across the cluster: two inodes and one data object, 2 copies each.
        per_sheep = [scrape(c.metrics_ports[i])[0] for i in range(3)]
        self.assertEqual(sum(value(m, "kelpie_sheep_objects") for m in per_sheep), 6)
        # Disk use follows the objects each sheep holds (placement decides which sheep hold any).
        for m in per_sheep:
            if value(m, "kelpie_sheep_objects") > 0:
                self.assertGreater(value(m, "kelpie_sheep_disk_used_bytes"), 0)
        self.assertEqual(value(after, "kelpie_sheep_recovering"), 0)
        info = json.loads(c.dog_ok("cluster", "info", "--json"))
        self.assertEqual(value(after, "kelpie_sheep_epoch"), info["epoch"])
        for state in ("modified", "shared", "invalidated", "holder"):
            self.assertEqual(value(after, "kelpie_sheep_lock_participants", state=state), 0)

        # Lock participants by state, as the cluster holds them (seen from any sheep).
        holder, other = sdproto.Conn(c.ports[0]), sdproto.Conn(c.ports[1])
        try:
            self.assertEqual(holder.set_client_id("holder"), 0)
            self.assertEqual(other.set_client_id("other"), 0)
            self.assertEqual(holder.lock_vdi("n")[0], 0)
            self.assertEqual(holder.lock_vdi("v", lock_type=1)[0], 0)
            self.assertEqual(other.lock_vdi("v", lock_type=1)[0], 0)
            want = {"modified": 1, "shared": 0, "invalidated": 1, "holder": 1}

            def participants(port):
                locks, _ = scrape(port)
                return {s: value(locks, "kelpie_sheep_lock_participants", state=s) for s in want}

            # A lock is acknowledged once the sheep it went through applied it; the others apply
            # the same ordered operation moments later.
            for port in (sm, c.metrics_ports[2]):
                wait_until(lambda: participants(port) == want, 10,
                           "lock participants %s on metrics port %d" % (want, port))
        finally:
            holder.close()
            other.close()
        self.assert_http_robust(sm)
        self.assertIsNone(c.sheep[0].poll())

    def test_kelpie_iscsi_metrics(self):
        c = Cluster(self.procs, self.work.path, nodes=1, copies=1)
        c.dog_ok("vdi", "create", "v", "16M")
        im = free_port(40000, 49999)
        t = KelpieIscsi(self.procs, self.work.path, c.ports, exports=["v"],
                        extra=["--metrics", "127.0.0.1:%d" % im])
        i0, itypes = scrape(im)
        self.assertEqual(itypes["kelpie_iscsi_scsi_command_duration_seconds"], "histogram")
        rc, out = qemu_io(t.url("v"), "write -P 0x5a 0 1M", "read -P 0x5a 0 1M")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("fail", out.lower())
        i1, _ = scrape(im)
        irose = lambda name, **l: value(i1, name, **l) - value(i0, name, **l)
        self.assertGreaterEqual(irose("kelpie_iscsi_scsi_bytes_total", dir="write"), MiB)
        self.assertGreaterEqual(irose("kelpie_iscsi_scsi_bytes_total", dir="read"), MiB)
        self.assertGreaterEqual(irose("kelpie_iscsi_scsi_commands_total", dir="write"), 1)
        self.assertGreaterEqual(irose("kelpie_iscsi_scsi_commands_total", dir="none"), 1)
        self.assertEqual(irose("kelpie_iscsi_scsi_command_duration_seconds_count", dir="read"),
                         irose("kelpie_iscsi_scsi_commands_total", dir="read"))
        # Sessions and connections: up while an initiator is logged in, down after it left.
        counts = lambda: tuple(value(scrape(im)[0], n)
                               for n in ("kelpie_iscsi_sessions", "kelpie_iscsi_connections"))
        wait_until(lambda: counts() == (0, 0), 20, "qemu-io's session to end")
        p = subprocess.Popen(["qemu-io", "-f", "raw", "-c", "sleep 4000", t.url("v")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: min(counts()) >= 1, 20, "a session and a connection")
        finally:
            p.wait(60)
        wait_until(lambda: counts() == (0, 0), 20, "the session to end")
        self.assert_http_robust(im)
        self.assertIsNone(t.proc.poll())


class ConfigAndUnits(KelpieTest, unittest.TestCase):
    def config(self, name, text):
        path = os.path.join(self.work.path, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_config_rejected(self, binary, text):
        """A key the daemon does not know is a clear startup error."""
        r = subprocess.run([binary, "-f", "--config", self.config("bad.toml", text)],
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"no-such-option", r.stderr + r.stdout)

    def test_sheep_from_a_config_file(self):
        w = self.work.path
        port, mport = free_port(7000, 9999), free_port(30000, 39999)
        conf = self.config("sheep.toml",
                           '# sheep options\ndir = "%s"\nport = %d\nzone = 7\ncluster = "local:%s"\n'
                           'metrics = "127.0.0.1:%d"\nforeground = true\n'
                           % (os.path.join(w, "sheep0"), port, os.path.join(w, "shm"), mport))
        # The command line wins over the file (-z 5 over zone = 7).
        sheep = self.procs.start([SHEEP, "--config", conf, "-z", "5"], os.path.join(w, "sheep0.out"))
        c = Cluster.__new__(Cluster)
        c.ports = [port]
        wait_until(lambda: sheep.poll() is None and c.dog(["node", "list"]).returncode == 0, 30,
                   "sheep from its config file to serve")
        nodes = json.loads(c.dog_ok("node", "list", "--json"))["nodes"]
        self.assertEqual([(n["port"], n["zone"]) for n in nodes], [(port, 5)])
        self.assertTrue(os.path.isdir(os.path.join(w, "sheep0", "obj")) or
                        os.path.exists(os.path.join(w, "sheep0", "sheep.log")))
        c.dog_ok("cluster", "format", "-c", "1")
        self.assertEqual(value(scrape(mport)[0], "kelpie_sheep_epoch"),
                         json.loads(c.dog_ok("cluster", "info", "--json"))["epoch"])

        self.assert_config_rejected(
            SHEEP, 'dir = "%s"\nport = %d\ncluster = "local:%s"\nno-such-option = 3\n'
            % (os.path.join(w, "bad"), free_port(7000, 9999, {port}), os.path.join(w, "shm2")))

    def test_kelpie_iscsi_from_a_config_file(self):
        w = self.work.path
        iport, imetrics = free_port(20000, 29999), free_port(40000, 49999)
        iconf = self.config("iscsi.toml", 'listen = ["127.0.0.1:%d"]\nramdisk = ["r:16"]\n'
                            'metrics = "127.0.0.1:%d"\nforeground = true\n' % (iport, imetrics))
        target = self.procs.start([KELPIE_ISCSI, "--config", iconf], os.path.join(w, "iscsi.out"))

        def accepting():
            self.assertIsNone(target.poll(), "kelpie-iscsi exited")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", iport)) == 0
        wait_until(accepting, 20, "kelpie-iscsi from its config file to listen")
        url = "iscsi://127.0.0.1:%d/iqn.2026-11.io.kelpie:r/0" % iport
        rc, out = qemu_io(url, "write -P 0x33 0 64k", "read -P 0x33 0 64k")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("fail", out.lower())
        self.assertGreaterEqual(value(scrape(imetrics)[0], "kelpie_iscsi_scsi_commands_total",
                                      dir="write"), 1)

        self.assert_config_rejected(
            KELPIE_ISCSI, 'listen = ["127.0.0.1:%d"]\nramdisk = ["r:1"]\nno-such-option = 3\n'
            % free_port(20000, 29999, {iport}))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_systemd_units_verify(self):
        # verify wants the ExecStart binaries to exist: point them at the ones just built.
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../dist/systemd")
        units = []
        for name, binary, as_name in (("kelpie-sheep@.service", SHEEP, "kelpie-sheep@test.service"),
                                      ("kelpie-iscsi.service", KELPIE_ISCSI, None)):
            with open(os.path.join(src, name)) as f:
                text = f.read()
            base = os.path.basename(binary)
            self.assertIn("/usr/local/bin/%s -f --config " % base, text)
            path = os.path.join(self.work.path, as_name or name)
            with open(path, "w") as f:
                f.write(text.replace("/usr/local/bin/" + base, os.path.abspath(binary)))
            units.append(path)
        r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True,
                           timeout=120, cwd=self.work.path)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
