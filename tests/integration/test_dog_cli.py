"""dog against a 3-node cluster: the commands of sheepdog's CLI, their columns, and one clear
line with a non-zero exit for bad input."""
import os
import unittest

from kelpie_harness import Cluster, KelpieTest, free_port

MiB = 1 << 20
GiB = 1 << 30


class DogCli(KelpieTest, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.c = Cluster(self.procs, self.work.path, nodes=3, copies=2, fmt=False)

    def dog(self, *args, input=None, port=None):
        r = self.c.dog(list(args), input=input, port=port)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def assert_error(self, args, code, text, **kw):
        rc, out, err = self.dog(*args, **kw)
        self.assertEqual(rc, code, (args, out, err))
        self.assertIn(text, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_lifecycle(self):
        # Before format: the cluster says so.
        rc, out, _ = self.dog("cluster", "info")
        self.assertEqual(rc, 0)
        self.assertIn("Waiting for cluster to be formatted", out)
        self.assert_error(["vdi", "create", "x", "1G"], 2, "Waiting for cluster to be formatted")

        self.c.dog_ok("cluster", "format", "-c", "2")
        rc, out, _ = self.dog("cluster", "info")
        self.assertIn("Cluster status: running", out)
        self.assertIn("with 2 redundancy policy", out)

        rc, out, _ = self.dog("node", "list", "-r")
        rows = [l.split() for l in out.splitlines()]
        self.assertEqual([r[1] for r in rows], ["127.0.0.1:%d" % p for p in sorted(self.c.ports)])
        self.assertEqual({r[3] for r in rows}, {"1", "2", "3"})

        self.c.dog_ok("vdi", "create", "a", "1G")
        data = os.urandom(5 * MiB)
        self.c.dog_ok("vdi", "write", "a", str(3 * MiB), input=data)
        self.assertEqual(self.c.dog_ok("vdi", "read", "a", str(3 * MiB), str(len(data)),
                                       port=self.c.ports[2]), data)
        self.c.dog_ok("vdi", "snapshot", "-s", "s1", "a")
        self.c.dog_ok("vdi", "clone", "-s", "s1", "a", "b")
        self.c.dog_ok("vdi", "write", "b", "0", input=b"\x77" * 4096)

        rc, out, _ = self.dog("vdi", "list", "-r")
        # Raw rows: type name id size used shared ctime vid copies tag shift (tag may be empty).
        rows = {(r[0], r[1], r[9]): r for r in (l.split(" ") for l in out.splitlines())}
        self.assertIn(("s", "a", "s1"), rows)
        self.assertIn(("=", "a", ""), rows)
        self.assertIn(("c", "b", ""), rows)
        snap = rows[("s", "a", "s1")]
        self.assertEqual(int(snap[3]), GiB)
        self.assertEqual(int(snap[4]), 2 * 4 * MiB)       # two objects written
        self.assertEqual(snap[8], "2")                    # copies
        rc, out, _ = self.dog("vdi", "list")
        self.assertRegex(out.splitlines()[0], r"Name\s+Id\s+Size\s+Used\s+Shared\s+Creation time"
                                              r"\s+VDI id\s+Copies\s+Tag")

        # The snapshot keeps the old bytes, the clone its own, the parent is untouched.
        self.assertEqual(self.c.dog_ok("vdi", "read", "-s", "s1", "a", str(3 * MiB), "4096"),
                         data[:4096])
        self.assertEqual(self.c.dog_ok("vdi", "read", "b", "0", "4096"), b"\x77" * 4096)
        self.assertEqual(self.c.dog_ok("vdi", "read", "a", "0", "4096"), b"\0" * 4096)
        rc, out, _ = self.dog("vdi", "tree")
        self.assertIn("a (s1)", out)

        self.c.dog_ok("vdi", "resize", "a", "2G")
        rc, out, _ = self.dog("vdi", "list", "-r", "a")
        current = [l.split(" ") for l in out.splitlines() if l.startswith("= ")]
        self.assertEqual(int(current[0][3]), 2 * GiB)

        rc, out, _ = self.dog("vdi", "object", "-i", "0", "b")
        self.assertEqual(out.count("has the object"), 2, out)
        rc, out, err = self.dog("vdi", "check", "a")
        self.assertEqual(rc, 0, err)
        rc, out, _ = self.dog("node", "info")
        self.assertIn("Total", out)

        self.c.dog_ok("vdi", "delete", "b")
        self.c.dog_ok("vdi", "delete", "-s", "s1", "a")
        rc, out, _ = self.dog("vdi", "list", "-r")
        self.assertEqual([l.split()[:2] for l in out.splitlines()], [["=", "a"]])

    def test_bad_input(self):
        self.c.dog_ok("cluster", "format")
        self.c.dog_ok("vdi", "create", "a", "64M")
        self.assert_error(["vdi", "create", "a", "1G"], 3, "VDI a already exists")
        self.assert_error(["vdi", "read", "nosuch"], 5, "No VDI found")
        self.assert_error(["vdi", "snapshot", "-s", "t", "nosuch"], 5, "No VDI found")
        self.assert_error(["vdi", "read", "-s", "notag", "a"], 5, "notag")
        self.assert_error(["vdi", "create", "c", "12X"], 64, "Invalid size '12X'")
        self.assert_error(["vdi", "frobnicate"], 64, "")
        self.assert_error(["frob"], 64, "unknown or missing command")
        self.assert_error(["vdi", "resize", "a", "1M"], 64, "Shrinking")
        self.assert_error(["vdi", "read", "a", "60M", "8M"], 64, "beyond")
        down = free_port(7000, 9999, set(self.c.ports))
        self.assert_error(["node", "list"], 2, "failed to connect", port=down)


if __name__ == "__main__":
    unittest.main(verbosity=2)
