"""Sheep on the zookeeper membership driver, with Debian's ZooKeeper server on loopback.

- kill -9 of a sheep: it is removed within the session timeout, I/O goes on with identical bytes;
  restarted it rejoins with its data, a fourth sheep joins, objects move onto it, recovery ends,
  dog vdi check is clean.
- ZooKeeper itself killed -9 and restarted under a write load: the writes go on meanwhile (no
  membership change needed), an ordered operation issued while it is down waits and completes,
  no sheep is dropped, and a verifier finds every acknowledged write.
"""
import os
import random
import threading
import time
import unittest

from block_ledger import BlockLedger
from kelpie_harness import KelpieTest, ZkCluster, ZooKeeper, wait_until

MiB = 1 << 20


@unittest.skipUnless(ZooKeeper.available(), "Debian's zookeeper server is not installed "
                     "(scripts/install-deps.sh installs zookeeperd)")
class ZooKeeperMembership(KelpieTest, unittest.TestCase):
    def test_kill9_restart_and_grow(self):
        zk = ZooKeeper(self.procs, self.work.path)
        c = ZkCluster(self.procs, self.work.path, zk.spec(timeout=5), nodes=3, copies=2)
        c.dog_ok("vdi", "create", "vol", "64M")
        # 16 objects and the inode, 2 copies on 4 sheep: the new sheep is placed none of them with
        # a probability of about 2^-17 (with 16 MiB, 1 in 32 runs failed for want of an object).
        data = os.urandom(64 * MiB)
        c.dog_ok("vdi", "write", "vol", "0", input=data)

        t0 = time.time()
        c.kill9(2)
        c.wait_nodes(2, port=c.ports[0], timeout=30)
        print("killed sheep removed after %.1f s" % (time.time() - t0))
        self.assertEqual(c.dog_ok("vdi", "read", "vol", "0", str(len(data)), port=c.ports[1]), data)

        # Restarted within its old session's timeout: the old incarnation is made to leave first.
        c.start_node(2)
        c.wait_nodes(3)
        new = c.add_node()
        c.wait_nodes(4)
        for port in c.ports:
            c.wait_nodes(4, port=port)
        c.wait_recovery()
        self.assertGreater(len(c.object_files(new)), 0, "no object moved onto the new sheep")
        check = c.dog(["vdi", "check", "vol"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn(b"fixed", check.stdout, check.stdout)
        for port in (c.ports[2], c.ports[new]):
            self.assertEqual(c.dog_ok("vdi", "read", "vol", "0", str(len(data)), port=port), data)
        # Every sheep agrees on the history of memberships (each stamps its own apply time).
        def history(port):
            info = c.dog_ok("-r", "cluster", "info", port=port).decode()
            return tuple(line.split(None, 1)[1] for line in info.splitlines() if line[:1].isdigit())
        histories = {history(p) for p in c.ports}
        self.assertEqual(len(histories), 1, histories)

    def test_zookeeper_restart_under_writes(self):
        zk = ZooKeeper(self.procs, self.work.path)
        # A restart takes seconds (Java, on a loaded CI machine); the sessions (15 s) outlive it.
        c = ZkCluster(self.procs, self.work.path, zk.spec(timeout=15), nodes=3, copies=2)
        c.dog_ok("vdi", "create", "vol", "16M")
        block, blocks = 64 * 1024, 64
        ledger = BlockLedger(block)
        log = []       # (time, ok)
        mu = threading.Lock()
        stop = threading.Event()

        def writer(port, mine):
            while not stop.is_set():
                b = random.choice(mine)
                payload = os.urandom(block)
                r = c.dog(["vdi", "write", "vol", str(b * block)], port=port, input=payload,
                          timeout=120)
                with mu:
                    log.append((time.time(), r.returncode == 0))
                ledger.record(b, payload, r.returncode == 0)

        threads = [threading.Thread(target=writer, args=(c.ports[i], list(range(i, blocks, 2))))
                   for i in range(2)]
        for t in threads:
            t.start()
        created = {}
        try:
            wait_until(lambda: len(log) >= 10, 60, "writes before the restart")
            down_at = time.time()
            zk.kill9()
            time.sleep(1.5)
            # An ordered operation while ZooKeeper is away: it waits, then completes.
            creator = threading.Thread(target=lambda: created.update(
                r=c.dog(["vdi", "create", "during", "8M"], port=c.ports[2], timeout=120)))
            creator.start()
            time.sleep(0.5)
            zk.start()
            up_at = time.time()
            creator.join(120)
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join(150)
        during = [ok for t, ok in log if down_at <= t <= up_at]
        print("ZooKeeper down %.1f s: %d writes acknowledged meanwhile, %d in all, %d failed"
              % (up_at - down_at, sum(during), sum(ok for _, ok in log),
                 sum(not ok for _, ok in log)))
        self.assertGreater(sum(during), 0, "no write went on while ZooKeeper was down")
        self.assertIn("r", created)
        self.assertEqual(created["r"].returncode, 0, created["r"].stderr)
        for port in c.ports:
            self.assertEqual(c.node_count(port), 3)

        for port in c.ports:
            image = c.dog_ok("vdi", "read", "vol", "0", str(blocks * block), port=port)
            self.assertEqual(ledger.problems(image, where="sheep %d" % port), [])
        check = c.dog(["vdi", "check", "vol"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn(b"during", c.dog_ok("vdi", "list"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
