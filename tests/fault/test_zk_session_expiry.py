"""A sheep's ZooKeeper session expires mid-load (soak only: KELPIE_SOAK=1).

Four sheep on the zookeeper driver (3 s sessions), three copies, under verified_load. One sheep is
frozen with SIGSTOP until the others have dropped it (its session expired), then thawed with
SIGCONT: it finds its session gone and rejoins (or, should it exit instead, it is restarted; the
test says which). After recovery every block, read through every sheep, holds its last
acknowledged write (or a later unacknowledged one), and `dog vdi check` finds nothing to fix.
"""
import os
import signal
import time
import unittest

import faultlib
from kelpie_harness import KelpieTest, ZkCluster, ZooKeeper, wait_until

SESSION_TIMEOUT = 3


@unittest.skipUnless(faultlib.soak(), "soak only (make soak sets KELPIE_SOAK=1)")
@unittest.skipUnless(ZooKeeper.available(), "Debian's zookeeper server is not installed "
                     "(scripts/install-deps.sh installs zookeeperd)")
class ZkSessionExpiry(KelpieTest, unittest.TestCase):
    def test_session_expires_under_verified_load(self):
        nodes, victim = 4, 3
        zk = ZooKeeper(self.procs, self.work.path)
        c = ZkCluster(self.procs, self.work.path, zk.spec(timeout=SESSION_TIMEOUT), nodes=nodes,
                      copies=3)
        c.dog_ok("vdi", "create", "vol", "256M")
        load = faultlib.VerifiedLoad(self.procs, self.work.path, c.ports, "vol", threads=6)
        load.wait_acked(20, what="writes before the freeze")

        proc = c.sheep[victim]
        os.kill(proc.pid, signal.SIGSTOP)
        frozen_at = time.time()
        try:
            c.wait_nodes(nodes - 1, port=c.ports[0], timeout=SESSION_TIMEOUT + 30)
            print("sheep %d dropped %.1f s after SIGSTOP" % (victim, time.time() - frozen_at))
            load.wait_acked(20, what="writes while sheep %d is frozen" % victim)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        # Thawed, it learns that its session expired: it rejoins, or it exits and is restarted.
        wait_until(lambda: proc.poll() is not None or c.node_count(c.ports[0]) == nodes, 60,
                   "sheep %d to rejoin or exit after its session expired" % victim)
        how = "rejoined by itself"
        if proc.poll() is not None:
            how = "exited (code %s) and was restarted" % proc.returncode
            c.start_node(victim)
        print("sheep %d %s" % (victim, how))
        for port in c.ports:
            c.wait_nodes(nodes, port=port, timeout=60)
        c.wait_recovery()
        load.wait_acked(20, what="writes after the rejoin")
        summary = load.stop()
        self.assertEqual(summary["abandoned"], 0, summary)
        c.wait_recovery()
        verified, bad = faultlib.verify_everywhere(self, c, load, "vol")
        faultlib.report("ZooKeeper session expiry", 1, summary["acked"], len(bad), verified,
                        failed_attempts=summary["failed_attempts"], victim=how)
        self.assertEqual(bad, [], "\n".join(bad[:50]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
