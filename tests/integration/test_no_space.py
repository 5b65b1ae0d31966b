"""A sheep whose disk fills: writes are answered NO_SPACE (dog exits 4, "full"), reads go on,
and every acknowledged write reads back. Sheep 0's directory is a small tmpfs where mounts are
allowed (root), else its store is limited with --capacity."""
import os
import shutil
import subprocess
import unittest

from kelpie_harness import Cluster, KelpieTest

MiB = 1 << 20
LIMIT_MIB = 24


def try_mount_tmpfs(path, mib):
    if os.geteuid() != 0:
        return False
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mib, "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


class SmallDiskCluster(Cluster):
    def __init__(self, *args, small_disk_args=(), **kw):
        self.small_disk_args = list(small_disk_args)
        super().__init__(*args, **kw)

    def node_args(self, i):
        args = super().node_args(i)
        return args[:1] + self.small_disk_args + args[1:] if i == 0 else args


class NoSpace(KelpieTest, unittest.TestCase):
    def setUp(self):
        super().setUp()
        small = os.path.join(self.work.path, "sheep0")
        extra = []
        if try_mount_tmpfs(small, LIMIT_MIB):
            # Unmounted after tearDown has stopped the sheep; then the emptied mount point goes
            # (cleanups run last registered first).
            self.addCleanup(shutil.rmtree, self.work.path, ignore_errors=True)
            self.addCleanup(subprocess.run, ["umount", "-l", small], capture_output=True)
            self.how = "tmpfs"
        else:
            extra = ["--capacity", "%dM" % LIMIT_MIB]
            self.how = "capacity"
        self.c = SmallDiskCluster(self.procs, self.work.path, nodes=3, copies=3,
                                  small_disk_args=extra)

    def test_full_disk_refuses_writes_keeps_reads(self):
        self.c.dog_ok("vdi", "create", "big", "%dM" % (4 * LIMIT_MIB))
        acked = {}
        full = None
        for i in range(2 * LIMIT_MIB // 4):
            chunk = os.urandom(4 * MiB)
            r = self.c.dog(["vdi", "write", "big", str(i * 4 * MiB)], input=chunk)
            if r.returncode == 0:
                acked[i] = chunk
                continue
            full = r
            break
        self.assertIsNotNone(full, "the small disk (%s) never filled" % self.how)
        self.assertEqual(full.returncode, 4, full.stderr)
        self.assertIn(b"no space", full.stderr)
        self.assertGreater(len(acked), 1)
        # Reads go on, through the full sheep too, and nothing acknowledged is lost.
        for port in self.c.ports:
            for i, chunk in acked.items():
                got = self.c.dog_ok("vdi", "read", "big", str(i * 4 * MiB), str(4 * MiB),
                                    port=port)
                self.assertEqual(got, chunk, "chunk %d via port %d" % (i, port))
        # A small overwrite of an already written range may or may not fit; either way it is
        # acknowledged only if every copy took it.
        r = self.c.dog(["vdi", "write", "big", "0"], input=b"\x42" * 4096)
        self.assertIn(r.returncode, (0, 4), r.stderr)
        expect = b"\x42" * 4096 if r.returncode == 0 else acked[0][:4096]
        if r.returncode == 0:
            self.assertEqual(self.c.dog_ok("vdi", "read", "big", "0", "4096"), expect)
        with open(os.path.join(self.work.path, "sheep0", "sheep.log"), errors="replace") as f:
            self.assertIn("refusing a", f.read())
        print("small disk: %s; %d chunks of 4 MiB acknowledged before NO_SPACE" % (self.how,
                                                                                 len(acked)))


if __name__ == "__main__":
    unittest.main()
