"""Two Debian tgtd, each through its own sheep, export one VDI with shared locks: no stale reads.

A clone of a VDI filled with 0x11: B reads block 0; A writes 0x22 there (copy-on-write from the
parent); B reads 0x22 (the original sheepdog hands B the parent's 0x11 here). A copies-on-write
into a second object and is killed -9 once that write is acknowledged; B reads A's data, then
writes and reads its own. Then libiscsi's MultipathIO.Simple through two tgtd on a fresh VDI.
"""
import unittest

from kelpie_harness import Cluster, KelpieTest, Procs, Tgtd, iscsi_test_cu, qemu_io, wait_until

MiB = 1 << 20
LU_ID = "params=scsi_id=KELPIE-MP-1,scsi_sn=KELPIE-MP-1"


def read_pattern(url, offset, length, byte):
    rc, out = qemu_io(url, "read -P 0x%02x %d %d" % (byte, offset, length))
    ok = rc == 0 and "Pattern verification failed" not in out and "read %d/%d" % (length, length) in out
    return ok, out


class MultipathTgtd(KelpieTest, unittest.TestCase):
    def export(self, cluster, node, vdi, name):
        tgt = Tgtd(self.procs, self.work.path, name)
        url = tgt.export("iqn.2026-11.io.kelpie.test:%s" % vdi,
                         "tcp:127.0.0.1:%d:%s" % (cluster.ports[node], vdi), bstype="sheepdog",
                         params=LU_ID.split("=", 1)[1])
        return tgt, url

    def lock_rows(self, cluster, vdi):
        out = cluster.dog_ok("vdi", "lock", "list", "-r").decode()
        return [l.split() for l in out.splitlines() if l.split()[0] == vdi]

    def test_no_stale_reads_across_targets(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "base", "64M")
        c.dog_ok("vdi", "write", "base", "0", str(8 * MiB), input=b"\x11" * (8 * MiB))
        c.dog_ok("vdi", "snapshot", "-s", "gold", "base")
        c.dog_ok("vdi", "clone", "-s", "gold", "base", "clone")

        tgt_a, url_a = self.export(c, 0, "clone", "tgtd-a")
        tgt_b, url_b = self.export(c, 1, "clone", "tgtd-b")
        # Both targets hold the shared lock, as two participants.
        rows = wait_until(lambda: len(self.lock_rows(c, "clone")) == 2 and self.lock_rows(c, "clone"),
                          20, "two participants on clone")
        self.assertEqual({r[2] for r in rows}, {"shared"})

        ok, out = read_pattern(url_b, 0, 4096, 0x11)
        self.assertTrue(ok, out)
        rc, out = qemu_io(url_a, "write -P 0x22 0 4k")
        self.assertEqual(rc, 0, out)
        ok, out = read_pattern(url_b, 0, 4096, 0x22)
        self.assertTrue(ok, "B read stale data after A's copy-on-write:\n" + out)
        ok, out = read_pattern(url_b, 4096, 4096, 0x11)   # the rest of the object kept the parent's
        self.assertTrue(ok, out)

        # A copies-on-write into object 1 and dies right after the write is acknowledged.
        rc, out = qemu_io(url_a, "write -P 0x33 %d 64k" % (4 * MiB))
        self.assertEqual(rc, 0, out)
        Procs.kill9(tgt_a.proc)
        ok, out = read_pattern(url_b, 4 * MiB, 65536, 0x33)
        self.assertTrue(ok, "B lost A's acknowledged write:\n" + out)
        rc, out = qemu_io(url_b, "write -P 0x44 %d 64k" % (4 * MiB + 65536),
                          "read -P 0x44 %d 64k" % (4 * MiB + 65536),
                          "read -P 0x33 %d 64k" % (4 * MiB),
                          "read -P 0x11 %d 64k" % (5 * MiB))
        self.assertEqual(rc, 0, out)
        self.assertNotIn("Pattern verification failed", out)
        # A's participant is dropped once its connections are gone.
        wait_until(lambda: len(self.lock_rows(c, "clone")) == 1, 20, "A's participant dropped")
        # The bytes through dog, from the third sheep, agree.
        self.assertEqual(c.dog_ok("vdi", "read", "clone", "0", "4096", port=c.ports[2]),
                         b"\x22" * 4096)
        self.assertEqual(c.dog_ok("vdi", "read", "clone", str(4 * MiB + 65536), "65536",
                                  port=c.ports[2]), b"\x44" * 65536)
        self.assertEqual(c.dog_ok("vdi", "read", "-s", "gold", "base", "0", "4096"), b"\x11" * 4096)
        tgt_b.stop()

    def test_libiscsi_multipath_simple(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "mp", "128M")
        _, url_a = self.export(c, 0, "mp", "tgtd-a")
        _, url_b = self.export(c, 2, "mp", "tgtd-b")
        passed, failed, total, out = iscsi_test_cu([url_a, url_b], test="SCSI.MultipathIO.Simple")
        print("MultipathIO.Simple: %d passed, %d failed of %d" % (passed, failed, total))
        self.assertEqual(failed, 0, out[-4000:])
        self.assertGreater(total, 0, out[-4000:])
        self.assertEqual(passed, total, "skipped tests:\n" + out[-4000:])
        self.assertRegex(out, r"asserts\s+\d+\s+\d+\s+\d+\s+0\s", out[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
