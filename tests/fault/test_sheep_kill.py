"""Sheep killed -9 and restarted, one at a time, under a verified write load.

Four sheep, three copies, local driver. verified_load writes 64 KiB blocks at random offsets of a
VDI through random gateways. Each cycle: some writes are acknowledged, a sheep (round robin) is
killed -9, the others see it leave, writes are acknowledged while it is down, it is restarted,
it rejoins, and the next cycle starts only after recovery has finished everywhere (soak also: as
soon as it has rejoined, so the next kill lands while recovery runs). Afterwards every block, read
through every sheep, holds its last acknowledged write (or a later unacknowledged one), and
`dog vdi check` finds nothing to fix. KELPIE_FAULT_CYCLES cycles (default 5).
"""
import time
import unittest

import faultlib
from kelpie_harness import Cluster, KelpieTest


class SheepKill(KelpieTest, unittest.TestCase):
    def test_kill9_cycles_under_verified_load(self):
        self.run_cycles(after_recovery=True)

    # Soak only. Can lose an acknowledged write today (1 of 2 ten-cycle runs here): when no
    # member holds a live copy of an object (its holders died or set it aside while the new ones
    # still recovered), recovery takes the first stale copy it finds, not the newest
    # (sheep/recovery.cc Recovery::Fetch).
    @unittest.skipUnless(faultlib.soak(), "soak only (make soak sets KELPIE_SOAK=1)")
    def test_kill9_cycles_during_recovery(self):
        self.run_cycles(after_recovery=False)

    def run_cycles(self, after_recovery):
        nodes, cycles = 4, faultlib.cycles()
        c = Cluster(self.procs, self.work.path, nodes=nodes, copies=3)
        c.dog_ok("vdi", "create", "vol", "256M")
        load = faultlib.VerifiedLoad(self.procs, self.work.path, c.ports, "vol", threads=6)
        t0 = time.time()
        for cycle in range(cycles):
            victim = cycle % nodes
            witness = c.ports[(victim + 1) % nodes]
            load.wait_acked(20, what="writes before killing sheep %d" % victim)
            c.kill9(victim)
            c.wait_nodes(nodes - 1, port=witness)
            load.wait_acked(20, what="writes while sheep %d is down" % victim)
            c.start_node(victim)
            for port in c.ports:
                c.wait_nodes(nodes, port=port)
            if after_recovery:
                c.wait_recovery()
            print("cycle %d: sheep %d killed and back, %.1f s in, %d writes acknowledged"
                  % (cycle + 1, victim, time.time() - t0, load.acked()))
        load.wait_acked(20, what="writes after the last cycle")
        summary = load.stop()
        self.assertEqual(summary["abandoned"], 0, summary)
        c.wait_recovery()
        verified, bad = faultlib.verify_everywhere(self, c, load, "vol")
        name = "sheep kill -9" + ("" if after_recovery else ", next kill during recovery")
        faultlib.report(name, cycles, summary["acked"], len(bad), verified,
                        failed_attempts=summary["failed_attempts"])
        self.assertEqual(bad, [], "\n".join(bad[:50]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
