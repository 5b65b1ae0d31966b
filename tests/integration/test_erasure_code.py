"""Erasure-coded VDIs (dog vdi create -c D:P): a 2:1 VDI on 3 nodes keeps one strip of every
object on each node; reads survive kill -9 of a sheep (decoded from parity); writes go on while it
is away; after its restart recovery rebuilds its strips and dog vdi check is clean; a lost strip is
rebuilt by dog vdi check. A 4:2 VDI on 6 nodes takes a qemu-io write through Debian's tgtd
and survives the loss of two sheep. Bad D:P and too few
zones are clear usage errors."""
import os
import unittest

from kelpie_harness import Cluster, KelpieTest, Tgtd, qemu_io

MiB = 1 << 20


def strip_files(node_dir):
    """{strip index: [(store key, size)]} of the strip files a sheep holds (proto/ec.h keys)."""
    out = {}
    obj = os.path.join(node_dir, "obj")
    for name in os.listdir(obj):
        try:
            key = int(name, 16)
        except ValueError:
            continue
        strip = (key >> 24) & 0xFF
        if strip and len(name) == 16:
            out.setdefault(strip - 1, []).append((key, os.path.getsize(os.path.join(obj, name))))
    return out


class ErasureCode(KelpieTest, unittest.TestCase):
    def dog(self, c, *args, port=None, input=None):
        r = c.dog(list(args), port=port, input=input)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def test_2_1_on_3_nodes(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        for bad, code, text in [("3:1", 64, "Invalid data number"),
                                ("4:16", 64, "Invalid parity number"),
                                ("4:0", 64, "Invalid parity number"),
                                ("4:2", 1, "needs 6 nodes in distinct zones, the cluster has 3")]:
            rc, out, err = self.dog(c, "vdi", "create", "-c", bad, "bad", "64M")
            self.assertEqual(rc, code, (bad, out, err))
            self.assertIn(text, err)
        c.dog_ok("vdi", "create", "-c", "2:1", "ec", "64M")
        c.dog_ok("vdi", "create", "plain", "8M")
        rows = {r[1]: r for r in (l.split(" ") for l in c.dog_ok("vdi", "list", "-r").decode()
                                  .splitlines())}
        self.assertEqual(rows["ec"][8], "2:1")
        self.assertEqual(rows["plain"][8], "3")

        data = bytearray(os.urandom(12 * MiB))
        c.dog_ok("vdi", "write", "ec", "1000", input=bytes(data))
        # A small unaligned overwrite: read-modify-write of one stripe.
        patch = os.urandom(5000)
        c.dog_ok("vdi", "write", "ec", str(4 * MiB + 777), input=patch)
        data[4 * MiB + 777 - 1000:4 * MiB + 777 - 1000 + len(patch)] = patch
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "1000", str(len(data)), port=c.ports[1]),
                         bytes(data))
        # Erasure coded, not replicated: each node holds one 2 MiB strip of each of the 4 objects.
        for i in range(3):
            strips = strip_files(os.path.join(self.work.path, "sheep%d" % i))
            self.assertEqual(sum(len(v) for v in strips.values()), 4, strips)
            self.assertTrue(all(size == 2 * MiB for v in strips.values() for _, size in v), strips)

        c.kill9(2)
        # At once (the node still a member, unreachable) and after it has left.
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "1000", str(len(data)), port=c.ports[0]),
                         bytes(data))
        c.wait_nodes(2, port=c.ports[0])
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "1000", str(len(data)), port=c.ports[1]),
                         bytes(data))
        # Writes go on with one strip homeless.
        second = os.urandom(MiB + 4321)
        c.dog_ok("vdi", "write", "ec", str(6 * MiB), input=second, port=c.ports[1])
        data[6 * MiB - 1000:6 * MiB - 1000 + len(second)] = second

        c.start_node(2)
        c.wait_nodes(3)
        c.wait_recovery()
        rc, out, err = self.dog(c, "vdi", "check", "ec")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("fixed", out)
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "1000", str(len(data)), port=c.ports[2]),
                         bytes(data))

        # A strip lost on disk: dog vdi check rebuilds it, and a second check finds nothing.
        strips = strip_files(os.path.join(self.work.path, "sheep2"))
        key = next(iter(strips.values()))[0][0]
        os.remove(os.path.join(self.work.path, "sheep2", "obj", "%016x" % key))
        rc, out, err = self.dog(c, "vdi", "check", "ec")
        self.assertEqual(rc, 0, err)
        self.assertIn("fixed missing", out)
        rc, out, err = self.dog(c, "vdi", "check", "ec")
        self.assertNotIn("fixed", out)
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "1000", str(len(data)), port=c.ports[0]),
                         bytes(data))

    def test_4_2_on_6_nodes_loses_two(self):
        c = Cluster(self.procs, self.work.path, nodes=6, copies=3)
        c.dog_ok("vdi", "create", "-c", "4:2", "ec", "32M")
        data = bytearray(os.urandom(8 * MiB + 5555))
        c.dog_ok("vdi", "write", "ec", "3", input=bytes(data))
        # Debian's tgtd (sheepdog protocol) and qemu-io: a write across stripes, read back.
        tgt = Tgtd(self.procs, self.work.path)
        url = tgt.export("iqn.2026-11.io.kelpie.test:ec", "tcp:127.0.0.1:%d:ec" % c.ports[0],
                         bstype="sheepdog")
        rc, out = qemu_io(url, "write -P 0x5a %d 65536" % (MiB + 512))
        self.assertEqual(rc, 0, out)
        rc, out = qemu_io(url, "read -P 0x5a %d 65536" % (MiB + 512))
        self.assertEqual(rc, 0, out)
        self.assertNotIn("Pattern verification failed", out)
        tgt.stop()
        data[MiB + 512 - 3:MiB + 512 - 3 + 65536] = b"\x5a" * 65536
        c.kill9(4)
        c.kill9(5)
        self.assertEqual(c.dog_ok("vdi", "read", "ec", "3", str(len(data)), port=c.ports[1]),
                         bytes(data))


if __name__ == "__main__":
    unittest.main(verbosity=2)
