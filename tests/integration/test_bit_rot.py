"""Bit rot: a byte flipped in one copy's object file on disk is caught by the block checksums.
The read through the gateway returns the right bytes and rewrites the bad copy; `dog vdi check`
finds and repairs a rotten copy nobody read; a block rotten on every copy reads as an error,
never as wrong data. Each repair is in the sheep's log."""
import glob
import os
import unittest

from kelpie_harness import Cluster, KelpieTest, wait_until

MiB = 1 << 20


class BitRot(KelpieTest, unittest.TestCase):
    def setUp(self):
        super().setUp()
        # Three copies on three sheep: every sheep holds every object.
        self.c = Cluster(self.procs, self.work.path, nodes=3, copies=3)

    def copy_path(self, node, oid_hex):
        return os.path.join(self.work.path, "sheep%d" % node, "obj", oid_hex)

    def data_object(self):
        """The oid (hex) of the VDI's only data object, as named on disk."""
        names = {os.path.basename(p) for p in glob.glob(os.path.join(self.work.path, "sheep0",
                                                                     "obj", "0*"))}
        data = [n for n in names if len(n) == 16]
        self.assertEqual(len(data), 1, names)
        return data[0]

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def flip(self, path, at):
        with open(path, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0x5A]))

    def log(self, node):
        return self.read(os.path.join(self.work.path, "sheep%d" % node, "sheep.log")).decode(
            errors="replace")

    def test_bit_rot_is_caught_and_repaired(self):
        self.c.dog_ok("vdi", "create", "a", "16M")
        data = os.urandom(MiB)
        self.c.dog_ok("vdi", "write", "a", "0", input=data)
        oid = self.data_object()
        good = self.read(self.copy_path(1, oid))
        for n in (0, 2):
            self.assertEqual(self.read(self.copy_path(n, oid)), good)

        # 1. Read repair: sheep 0 prefers its own copy, finds it rotten, serves another.
        self.flip(self.copy_path(0, oid), 300000)
        self.assertNotEqual(self.read(self.copy_path(0, oid)), good)
        got = self.c.dog_ok("vdi", "read", "a", "0", str(MiB), port=self.c.ports[0])
        self.assertEqual(got, data)
        wait_until(lambda: self.read(self.copy_path(0, oid)) == good, 10, "read repair")
        self.assertIn("failed its checksum", self.log(0))
        self.assertIn("repair %s: rewrote the bad copy on" % oid, self.log(0))

        # 2. dog vdi check: a rotten copy nobody has read yet.
        self.flip(self.copy_path(2, oid), 700001)
        r = self.c.dog(["vdi", "check", "a"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"fixed replica %s" % oid.encode(), r.stdout)
        self.assertEqual(self.read(self.copy_path(2, oid)), good)
        self.assertIn("failed its checksum", self.log(2))
        self.assertTrue(any("check %s: copy on" % oid in self.log(n) and "was corrupt, repaired"
                            in self.log(n) for n in range(3)))
        # dog cluster check: everything is healthy again.
        r = self.c.dog(["cluster", "check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"fixed", r.stdout)

        # 3. The same block rotten on every copy: an error, never the rotten bytes.
        for n in range(3):
            self.flip(self.copy_path(n, oid), 4096 * 10 + 5)
        r = self.c.dog(["vdi", "read", "a", str(4096 * 10), "4096"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        # Other blocks still read.
        self.assertEqual(self.c.dog_ok("vdi", "read", "a", "0", "4096"), data[:4096])


if __name__ == "__main__":
    unittest.main()
