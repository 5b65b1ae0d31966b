"""Debian tgtd serves a Kelpie VDI through its sheepdog backing store (protocol v2 on the wire).

3 sheep, 3 copies. qemu-io writes patterns across an object boundary and reads them back, reads
zeros where nothing was written; dog reads the same bytes; and libiscsi's SCSI compliance suite
through that tgtd passes at least as many tests as tgtd on a plain file, measured in this run.
"""
import os
import unittest

from kelpie_harness import Cluster, KelpieTest, Tgtd, iscsi_test_cu, qemu_io

MiB = 1 << 20


class TgtdOnSheep(KelpieTest, unittest.TestCase):
    def test_qemu_io_and_compliance(self):
        cluster = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        cluster.dog_ok("vdi", "create", "v1", "128M")
        tgt = Tgtd(self.procs, self.work.path, "tgtd-sheep")
        url = tgt.export("iqn.2026-11.io.kelpie.test:v1", "tcp:127.0.0.1:%d:v1" % cluster.ports[0],
                         bstype="sheepdog")

        # Patterns across the boundary of objects 0 and 1 (4 MiB objects), zeros elsewhere.
        boundary = 4 * MiB
        rc, out = qemu_io(url, "write -P 0x5a %d 8k" % (boundary - 4096),
                          "read -P 0x5a %d 8k" % (boundary - 4096),
                          "write -P 0xa5 %d 64k" % (60 * MiB),
                          "read -P 0xa5 %d 64k" % (60 * MiB),
                          "read -P 0 0 64k", "read -P 0 %d 1M" % (100 * MiB))
        self.assertEqual(rc, 0, out)
        self.assertNotIn("Pattern verification failed", out)
        self.assertEqual(out.count("read "), 4, out)
        self.assertIn("wrote 8192/8192 bytes at offset %d" % (boundary - 4096), out)

        # The same bytes through dog, from another sheep.
        data = cluster.dog_ok("vdi", "read", "v1", str(boundary - 4096), "8192", port=cluster.ports[2])
        self.assertEqual(data, b"\x5a" * 8192)
        data = cluster.dog_ok("vdi", "read", "v1", "0", "4096", port=cluster.ports[1])
        self.assertEqual(data, b"\0" * 4096)

        # SCSI compliance through tgtd on Kelpie versus tgtd on a plain file.
        passed, failed, total, out = iscsi_test_cu([url])
        print("tgtd on Kelpie: %d passed, %d failed of %d" % (passed, failed, total))
        tgt.stop()

        ref_file = os.path.join(self.work.path, "ref.img")
        with open(ref_file, "wb") as f:
            f.truncate(128 * MiB)
        ref = Tgtd(self.procs, self.work.path, "tgtd-file")
        ref_url = ref.export("iqn.2026-11.io.kelpie.test:ref", ref_file)
        ref_passed, ref_failed, ref_total, _ = iscsi_test_cu([ref_url])
        print("tgtd on a file:  %d passed, %d failed of %d" % (ref_passed, ref_failed, ref_total))
        ref.stop()
        self.assertEqual(total, ref_total)
        self.assertGreaterEqual(passed, ref_passed, out[-4000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
