"""kelpie-iscsi, Kelpie's own iSCSI target, on a 3-copy cluster, driven by real initiators.

- libiscsi's compliance suite: iscsi-test-cu --test=SCSI and --test=iSCSI (--dataloss) through one
  target, 0 failed.
- Two kelpie-iscsi through different sheep exporting one VDI: SCSI.MultipathIO (all four tests,
  nothing skipped); a persistent reservation taken through A binds B (iscsi_check pr); the clone
  copy-on-write scenario of the coherence tests with zero stale reads.
- iscsi-ls discovery, qemu-img/qemu-io round trips, CHAP one-way (a wrong secret is refused) and
  mutual; crafted malformed PDUs leave the daemon serving; failover to the next --sheep.
"""
import os
import subprocess
import unittest

import iscsi_pdu
from kelpie_harness import (IQN_PREFIX, ISCSI_CHECK, Cluster, KelpieIscsi, KelpieTest, Procs,
                            iscsi_test_cu, qemu_io, wait_until)

MiB = 1 << 20


def read_pattern(url, offset, length, byte):
    rc, out = qemu_io(url, "read -P 0x%02x %d %d" % (byte, offset, length))
    ok = rc == 0 and "Pattern verification failed" not in out and "read %d/%d" % (length, length) in out
    return ok, out


def run(args, timeout=120):
    r = subprocess.run(args, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


class KelpieIscsiTest(KelpieTest, unittest.TestCase):
    def test_compliance_suites(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "lun", "128M")
        t = KelpieIscsi(self.procs, self.work.path, [c.ports[0], c.ports[1]], exports=["lun"])
        passed, failed, total, out = iscsi_test_cu([t.url("lun")], "SCSI")
        print("iscsi-test-cu SCSI on kelpie-iscsi: %d passed, %d failed of %d" % (passed, failed, total))
        self.assertEqual(failed, 0, out[-6000:])
        passed, failed, total, out = iscsi_test_cu([t.url("lun")], "iSCSI")
        print("iscsi-test-cu iSCSI on kelpie-iscsi: %d passed, %d failed of %d" % (passed, failed, total))
        self.assertEqual(failed, 0, out[-6000:])

    def test_multipath(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "mp", "128M")
        a = KelpieIscsi(self.procs, self.work.path, [c.ports[0]], exports=["mp"], name="target-a")
        b = KelpieIscsi(self.procs, self.work.path, [c.ports[1]], exports=["mp"], name="target-b")
        passed, failed, total, out = iscsi_test_cu([a.url("mp"), b.url("mp")], "SCSI.MultipathIO")
        print("MultipathIO through two kelpie-iscsi: %d passed, %d failed of %d" % (passed, failed, total))
        self.assertEqual((failed, total), (0, 4), out[-6000:])
        self.assertEqual(passed, 4, out[-6000:])
        self.assertNotIn("[SKIPPED]", out, out[-4000:])
        rc, out = run([ISCSI_CHECK, "pr", a.url("mp"), b.url("mp")])
        self.assertEqual(rc, 0, out)

        # The clone copy-on-write scenario: B must never read what A has overwritten.
        c.dog_ok("vdi", "create", "base", "64M")
        c.dog_ok("vdi", "write", "base", "0", str(12 * MiB), input=b"\x11" * (12 * MiB))
        c.dog_ok("vdi", "snapshot", "-s", "gold", "base")
        c.dog_ok("vdi", "clone", "-s", "gold", "base", "clone")
        ca = KelpieIscsi(self.procs, self.work.path, [c.ports[0]], exports=["clone"], name="clone-a")
        cb = KelpieIscsi(self.procs, self.work.path, [c.ports[2]], exports=["clone"], name="clone-b")
        stale = 0
        for i, byte in enumerate((0x22, 0x33, 0x44)):
            off = i * 4 * MiB + 8192
            ok, out = read_pattern(cb.url("clone"), off, 4096, 0x11)
            self.assertTrue(ok, out)
            rc, out = qemu_io(ca.url("clone"), "write -P 0x%02x %d 4k" % (byte, off))
            self.assertEqual(rc, 0, out)
            ok, out = read_pattern(cb.url("clone"), off, 4096, byte)
            stale += 0 if ok else 1
            rc, out = qemu_io(cb.url("clone"), "write -P 0x%02x %d 4k" % (byte + 1, off + 4096))
            self.assertEqual(rc, 0, out)
            ok, out = read_pattern(ca.url("clone"), off + 4096, 4096, byte + 1)
            stale += 0 if ok else 1
        # A region no one has allocated yet: qemu asks GET LBA STATUS first and reads nothing for
        # unmapped blocks (LBPRZ), so "unmapped" must be as current as the data.
        for off, byte in ((40 * MiB, 0x5c), (44 * MiB + 512, 0x5d)):
            ok, out = read_pattern(cb.url("clone"), off, 65536, 0)
            self.assertTrue(ok, out)
            rc, out = qemu_io(ca.url("clone"), "write -P 0x%02x %d 64k" % (byte, off))
            self.assertEqual(rc, 0, out)
            ok, out = read_pattern(cb.url("clone"), off, 65536, byte)
            stale += 0 if ok else 1
        self.assertEqual(stale, 0, "stale reads through the second target")
        rows = [l.split() for l in c.dog_ok("vdi", "lock", "list", "-r").decode().splitlines()]
        self.assertEqual(len([r for r in rows if r[0] == "clone"]), 2, rows)

    def test_discovery_chap_and_bad_input(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        for v in ("alpha", "beta"):
            c.dog_ok("vdi", "create", v, "32M")
        t = KelpieIscsi(self.procs, self.work.path, [c.ports[0]], export_all=True,
                        chap="alice:s3cret-initiator", mutual_chap="kelpie:s3cret-target")
        rc, out = run(["iscsi-ls", "iscsi://alice%%s3cret-initiator@127.0.0.1:%d" % t.port])
        self.assertEqual(rc, 0, out)
        for v in ("alpha", "beta"):
            self.assertIn("%s:%s" % (IQN_PREFIX, v), out)
        good = t.url("alpha", "alice", "s3cret-initiator")
        rc, out = run([ISCSI_CHECK, "login", good])
        self.assertEqual(rc, 0, out)
        rc, out = run([ISCSI_CHECK, "login", good, "kelpie", "s3cret-target"])
        self.assertEqual(rc, 0, "mutual CHAP: " + out)
        rc, out = run([ISCSI_CHECK, "login", good, "kelpie", "wrong-target-secret"])
        self.assertNotEqual(rc, 0, "a target answering with the wrong secret was accepted")
        rc, out = run([ISCSI_CHECK, "login", t.url("alpha", "alice", "wrong-secret")])
        self.assertNotEqual(rc, 0, "a wrong CHAP secret was accepted")
        rc, out = run([ISCSI_CHECK, "login", t.url("alpha")])
        self.assertNotEqual(rc, 0, "a login without CHAP was accepted")

        # qemu-img / qemu-io round trip (without CHAP, on a second target process).
        u = KelpieIscsi(self.procs, self.work.path, [c.ports[1]], exports=["beta"], name="plain")
        rc, out = run(["qemu-img", "info", u.url("beta")])
        self.assertEqual(rc, 0, out)
        self.assertIn("32 MiB", out)
        rc, out = qemu_io(u.url("beta"), "write -P 0x5a 4190208 8192", "read -P 0x5a 4190208 8192")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("failed", out)

        # Malformed input: each crafted PDU costs only its own connection.
        target = "%s:beta" % IQN_PREFIX
        cases = {}
        r = iscsi_pdu.RawInitiator(u.port)
        self.assertEqual(r.login(target), (0, 0))
        r.sock.sendall(iscsi_pdu.bhs(0x0F, 0x80, 0, bytes(8) + b"\0\0\0\x07"))
        cases["unknown opcode"] = self.answered_or_closed(r, expect_reject=True)
        r = iscsi_pdu.RawInitiator(u.port)
        r.login(target)
        r.sock.sendall(r.scsi_bhs(b"\x2a" + bytes(9), edtl=1 << 20, dsl=1 << 20))
        cases["data segment over the limit"] = self.answered_or_closed(r)
        r = iscsi_pdu.RawInitiator(u.port)
        self.assertEqual(r.login(target, digest="CRC32C"), (0, 0))
        r.sock.sendall(r.scsi_bhs(b"\0" * 6) + b"\xde\xad\xbe\xef")
        cases["bad header digest"] = self.answered_or_closed(r)
        r = iscsi_pdu.RawInitiator(u.port)
        r.sock.sendall(r.scsi_bhs(b"\0" * 6))
        cases["command before login"] = self.answered_or_closed(r)
        r = iscsi_pdu.RawInitiator(u.port)
        r.login(target)
        r.sock.sendall(r.scsi_bhs(b"\0" * 6)[:20])
        r.close()
        cases["vanished mid-PDU"] = True
        for what, ok in cases.items():
            self.assertTrue(ok, what)
            # ... and the daemon serves a new session afterwards.
        r = iscsi_pdu.RawInitiator(u.port)
        self.assertEqual(r.login(target), (0, 0))
        self.assertEqual(r.test_unit_ready() in (0, 2), True)
        r.close()
        ok, out = read_pattern(u.url("beta"), 4190208, 8192, 0x5a)
        self.assertTrue(ok, out)
        self.assertIsNone(u.proc.poll())

    def answered_or_closed(self, r, expect_reject=False):
        """The target answered with a Reject (when expected) or closed the connection."""
        try:
            h, _ = r.recv_pdu()
            return expect_reject and h[0] & 0x3F == iscsi_pdu.OP_REJECT
        except (ConnectionError, OSError):
            return True
        finally:
            r.close()

    def test_failover_to_next_sheep(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "fo", "32M")
        t = KelpieIscsi(self.procs, self.work.path, [c.ports[0], c.ports[1]], exports=["fo"])
        rc, out = qemu_io(t.url("fo"), "write -P 0x61 0 64k")
        self.assertEqual(rc, 0, out)
        c.kill9(0)
        c.wait_nodes(2, port=c.ports[1])
        # A read first: it starts on the non-blocking path, whose connection to the dead sheep
        # fails; a worker takes the lock on the next sheep and redoes it.
        rc, out = qemu_io(t.url("fo"), "read -P 0x61 0 64k", "write -P 0x62 4194304 64k",
                          "read -P 0x61 0 64k", "read -P 0x62 4194304 64k")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("failed", out)


if __name__ == "__main__":
    unittest.main()
