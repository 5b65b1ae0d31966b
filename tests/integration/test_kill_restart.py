"""kill -9 of a sheep while a VDI holds data: I/O goes on through the others, bytes identical;
the sheep restarts, recovery ends, dog vdi check is clean and the restarted node serves the
newest data."""
import os
import unittest

from kelpie_harness import Cluster, KelpieTest

MiB = 1 << 20


class KillRestart(KelpieTest, unittest.TestCase):
    def test_kill9_and_recover(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "vol", "64M")
        first = os.urandom(10 * MiB + 12345)
        c.dog_ok("vdi", "write", "vol", "1000", input=first)

        c.kill9(2)
        c.wait_nodes(2, port=c.ports[0])
        for port in c.ports[:2]:
            self.assertEqual(c.dog_ok("vdi", "read", "vol", "1000", str(len(first)), port=port), first)

        # Writes go on while the node is down: overwrite part, and fill a fresh object.
        second = os.urandom(5 * MiB)
        c.dog_ok("vdi", "write", "vol", str(3 * MiB), input=second, port=c.ports[1])
        fresh = os.urandom(MiB)
        c.dog_ok("vdi", "write", "vol", str(40 * MiB), input=fresh, port=c.ports[0])

        c.start_node(2)
        c.wait_nodes(3)
        c.wait_recovery()
        check = c.dog(["vdi", "check", "vol"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn(b"fixed", check.stdout, check.stdout)

        expect = bytearray(first)
        expect[3 * MiB - 1000:3 * MiB - 1000 + len(second)] = second
        got = c.dog_ok("vdi", "read", "vol", "1000", str(len(first)), port=c.ports[2])
        self.assertEqual(got, bytes(expect))
        self.assertEqual(c.dog_ok("vdi", "read", "vol", str(40 * MiB), str(MiB), port=c.ports[2]), fresh)

        # The restarted node holds current copies itself: take the others away, one at a time.
        obj = c.dog_ok("vdi", "object", "-i", "0", "vol").decode()
        self.assertEqual(obj.count("has the object"), 3, obj)


if __name__ == "__main__":
    unittest.main(verbosity=2)
