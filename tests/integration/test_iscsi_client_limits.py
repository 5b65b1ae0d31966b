"""What one initiator may hold or stall on kelpie-iscsi (--pdu-timeout, --login-timeout,
--max-connections), on an in-memory disk: a peer that sends a PDU one byte a second is dropped
after the PDU timeout, one that never logs in after the login timeout, a thousand idle
connections do not keep a new initiator from logging in and being served, and connections over
--max-connections are closed at once — each drop with a log line, and every other initiator
served on."""
import os
import resource
import socket
import unittest

import iscsi_pdu
from kelpie_harness import closed_by_peer, IQN_PREFIX, KelpieIscsi, KelpieTest, wait_until

TARGET = "%s:disk" % IQN_PREFIX


class IscsiClientLimits(KelpieTest, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.log_path = os.path.join(self.work.path, "kelpie-iscsi.log")
        self.t = KelpieIscsi(self.procs, self.work.path, [], extra=[
            "--ramdisk", "disk:8", "--pdu-timeout", "2", "--login-timeout", "3",
            "--log-file", self.log_path])
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        super().tearDown()

    def log(self, path=None):
        with open(path or self.log_path, errors="replace") as f:
            return f.read()

    def assert_served(self, port=None):
        r = iscsi_pdu.RawInitiator(port or self.t.port)
        try:
            self.assertEqual(r.login(TARGET), (0, 0))
            self.assertEqual(r.test_unit_ready() in (0x00, 0x02), True)  # GOOD or UA
        finally:
            r.close()

    def test_slow_pdu_dropped_after_pdu_timeout(self):
        r = iscsi_pdu.RawInitiator(self.t.port)
        self.socks.append(r.sock)
        self.assertEqual(r.login(TARGET), (0, 0))
        # A full feature phase connection sending its next BHS at one byte a second (48 s).
        self.assertTrue(closed_by_peer(r.sock, r.scsi_bhs(b"\0" * 6)[:40]))
        wait_until(lambda: "PDU not complete within 2 s" in self.log(), 10, "a log line")
        self.assert_served()

    def test_no_login_dropped_after_login_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.t.port), timeout=10)
        self.socks.append(s)
        self.assertTrue(closed_by_peer(s))
        wait_until(lambda: "login not complete within 3 s" in self.log(), 10, "a log line")
        self.assert_served()

    def test_thousand_idle_connections_do_not_starve_a_new_one(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        self.socks += [socket.create_connection(("127.0.0.1", self.t.port), timeout=10)
                       for _ in range(1000)]
        self.assert_served()

    def test_connections_over_max_connections_refused(self):
        log_path = os.path.join(self.work.path, "kelpie-iscsi-max.log")
        t = KelpieIscsi(self.procs, self.work.path, [], name="kelpie-iscsi-max", extra=[
            "--ramdisk", "disk:8", "--max-connections", "3", "--log-file", log_path])
        held = [socket.create_connection(("127.0.0.1", t.port), timeout=10) for _ in range(3)]
        self.socks += held
        extra = socket.create_connection(("127.0.0.1", t.port), timeout=10)
        self.socks.append(extra)
        self.assertTrue(closed_by_peer(extra))
        wait_until(lambda: "refusing connection: 3 connections open" in self.log(log_path), 10,
                   "a log line")
        for s in held:
            s.close()

        def served():
            try:
                self.assert_served(t.port)
                return True
            except (AssertionError, OSError):
                return False
        wait_until(served, 10, "a login once connections were closed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
