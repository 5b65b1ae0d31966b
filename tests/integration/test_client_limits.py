"""What one client may hold or stall on a sheep (--header-timeout, --idle-timeout,
--max-connections): a peer that sends one byte a second is dropped after the header timeout, a
silent one after the idle timeout, connections over the limit are closed at once, a thousand idle
connections do not keep a new client from being served — each drop with a log line, and every
other client served on."""
import os
import resource
import socket
import unittest

import sdproto
from kelpie_harness import closed_by_peer, Cluster, KelpieTest, wait_until


class LimitedCluster(Cluster):
    """A one-sheep cluster whose sheep gets extra flags."""

    def __init__(self, procs, workdir, extra):
        self.extra = list(extra)
        super().__init__(procs, workdir, nodes=1, copies=1)

    def node_args(self, i):
        args = super().node_args(i)
        return args[:-1] + self.extra + args[-1:]


class ClientLimits(KelpieTest, unittest.TestCase):
    # Sheep flags per test (the header timeout is set low so that a slow peer is cut quickly).
    FLAGS = {
        "test_slow_sender_dropped_after_header_timeout": ["--header-timeout", "2"],
        "test_slow_payload_dropped_after_header_timeout": ["--header-timeout", "2"],
        "test_idle_connection_closed_after_idle_timeout": ["--idle-timeout", "2"],
        "test_connections_over_the_limit_closed": ["--max-connections", "20"],
        "test_thousand_idle_connections_do_not_starve_a_new_one": [],
    }

    def setUp(self):
        super().setUp()
        flags = self.FLAGS[self._testMethodName]
        self.c = LimitedCluster(self.procs, self.work.path, flags)
        self.c.dog_ok("vdi", "create", "vol", "16M")
        self.port = self.c.ports[0]
        self.good = sdproto.Conn(self.port)
        _, vid = self.good.get_vdi_info("vol")
        self.oid = sdproto.data_oid(vid, 0)
        self.assertEqual(self.good.write_obj(self.oid, 0, b"\x42" * 4096, create=True), 0)
        self.opened = []

    def tearDown(self):
        for s in self.opened:
            s.close()
        self.good.close()
        super().tearDown()

    def log(self):
        with open(os.path.join(self.work.path, "sheep0", "sheep.log"), errors="replace") as f:
            return f.read()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.opened.append(s)
        return s

    def assert_served(self, conn=None):
        fresh = conn or sdproto.Conn(self.port)
        self.assertEqual(fresh.read_obj(self.oid, 0, 16), (0, b"\x42" * 16))
        if conn is None:
            fresh.close()

    def test_slow_sender_dropped_after_header_timeout(self):
        slow = self.connect()
        hdr = sdproto.HDR.pack(2, sdproto.OP_READ_OBJ, 0, 0, 1, 16, sdproto.obj_union(self.oid))
        # 48 header bytes at one a second would take 48 s: the 2 s header timeout cuts it first.
        self.assertTrue(closed_by_peer(slow, hdr[:40]))
        wait_until(lambda: "header not complete within 2 s" in self.log(), 10, "a log line")
        self.assert_served(self.good)
        self.assert_served()

    def test_slow_payload_dropped_after_header_timeout(self):
        slow = self.connect()
        hdr = sdproto.HDR.pack(2, sdproto.OP_WRITE_OBJ, sdproto.FLAG_WRITE, 0, 1, 4096,
                               sdproto.obj_union(self.oid))
        slow.sendall(hdr)
        self.assertTrue(closed_by_peer(slow, b"\x66" * 40))
        wait_until(lambda: "request not complete within 2 s" in self.log(), 10, "a log line")
        self.assert_served()  # and nothing of the slow write was applied

    def test_idle_connection_closed_after_idle_timeout(self):
        idle = self.connect()
        self.assertTrue(closed_by_peer(idle))
        wait_until(lambda: "idle for 2 s" in self.log(), 10, "a log line")
        self.assert_served()

    def test_connections_over_the_limit_closed(self):
        # 25 more connections on top of `good` (and the sheep's own pool connections): those
        # past the limit of 20 are closed at once, the others stay open and served.
        conns = [self.connect() for _ in range(25)]
        refused = [c for c in conns if closed_by_peer(c, b"", wait=0.5)]
        self.assertGreater(len(refused), 0)
        self.assertLess(len(refused), 25)
        wait_until(lambda: "refusing connection" in self.log(), 10, "a log line")
        self.assert_served(self.good)
        # Once some close, new clients are served again.
        for c in conns:
            c.close()

        def fresh_served():
            try:
                c = sdproto.Conn(self.port, timeout=5)
                try:
                    return c.read_obj(self.oid, 0, 16) == (0, b"\x42" * 16)
                finally:
                    c.close()
            except (ConnectionError, OSError):
                return False
        wait_until(fresh_served, 20, "a new client served below the limit")

    def test_thousand_idle_connections_do_not_starve_a_new_one(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        idle = [sdproto.Conn(self.port) for _ in range(1000)]
        self.opened += [c.sock for c in idle]
        self.assert_served()
        self.assert_served(self.good)
        # The idle ones are served too (no idle timeout by default).
        self.assert_served(idle[0])
        self.assert_served(idle[-1])
        self.assertEqual(self.c.node_count(self.port), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
