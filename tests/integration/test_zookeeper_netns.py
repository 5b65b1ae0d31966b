"""Three hosts in network namespaces (veth pairs into one bridge), one sheep each, ZooKeeper on the
first. Cutting the third host's link: it leaves (the others see 2 nodes) and I/O goes on through
them; the cut-off sheep refuses writes (no split brain). Link up: it rejoins with a new session
and recovers; every copy agrees and it serves the newest bytes.

Needs root (ip netns add); skipped, saying why, only where namespaces cannot be created."""
import os
import time
import unittest

from kelpie_harness import KelpieTest, NetHosts, ZkCluster, ZooKeeper

MiB = 1 << 20


class ZooKeeperAcrossHosts(KelpieTest, unittest.TestCase):
    def setUp(self):
        if not ZooKeeper.available():
            self.skipTest("Debian's zookeeper server is not installed (scripts/install-deps.sh)")
        why = NetHosts.unsupported()
        if why:
            self.skipTest("network namespaces unavailable here: " + why)
        super().setUp()
        self.net = NetHosts(3)
        # Cleanups run after tearDown, which stops every process first.
        self.addCleanup(self.net.remove)

    def test_cut_off_host_leaves_refuses_writes_and_rejoins(self):
        net = self.net
        zk = ZooKeeper(self.procs, self.work.path, addr=net.addrs[0], port=2181, netns=net.ns[0])
        c = ZkCluster(self.procs, self.work.path, zk.spec(timeout=5), nodes=3, copies=2,
                      hosts=net.hosts())
        for port in c.ports:
            c.wait_nodes(3, port=port)
        c.dog_ok("vdi", "create", "vol", "32M")
        first = os.urandom(12 * MiB)
        c.dog_ok("vdi", "write", "vol", "0", input=first, port=c.ports[2])

        t0 = time.time()
        net.cut(2)
        c.wait_nodes(2, port=c.ports[0], timeout=30)
        c.wait_nodes(2, port=c.ports[1], timeout=10)
        print("cut-off host dropped after %.1f s" % (time.time() - t0))

        # I/O goes on through the others.
        second = os.urandom(6 * MiB)
        c.dog_ok("vdi", "write", "vol", str(4 * MiB), input=second, port=c.ports[1])
        expect = bytearray(first)
        expect[4 * MiB:10 * MiB] = second
        self.assertEqual(c.dog_ok("vdi", "read", "vol", "0", str(len(first)), port=c.ports[0]),
                         bytes(expect))

        # The cut-off sheep refuses writes rather than diverge.
        t1 = time.time()
        r = c.dog(["vdi", "write", "vol", "0"], port=c.ports[2], input=os.urandom(MiB), timeout=120)
        print("write through the cut-off sheep: exit %d after %.1f s" % (r.returncode,
                                                                         time.time() - t1))
        self.assertNotEqual(r.returncode, 0, "the cut-off sheep acknowledged a write")
        self.assertEqual(c.dog_ok("vdi", "read", "vol", "0", str(len(first)), port=c.ports[0]),
                         bytes(expect))

        # Link up: it rejoins (new session) and recovers.
        t2 = time.time()
        net.heal(2)
        for port in c.ports:
            c.wait_nodes(3, port=port, timeout=60)
        print("healed host rejoined after %.1f s" % (time.time() - t2))
        c.wait_recovery()
        self.assertEqual(c.dog_ok("vdi", "read", "vol", "0", str(len(first)), port=c.ports[2]),
                         bytes(expect))
        check = c.dog(["vdi", "check", "vol"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn(b"fixed", check.stdout, check.stdout)
        # After the others go, the rejoined sheep still holds current copies of what it should.
        c.dog_ok("vdi", "write", "vol", "0", input=b"after" * 100, port=c.ports[2])


if __name__ == "__main__":
    unittest.main(verbosity=2)
