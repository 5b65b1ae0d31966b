"""kelpie-iscsi killed -9 under a qemu-io write load and restarted on the same portal.

Three sheep, three copies. One writer runs qemu-io again and again over iSCSI, each run writing
64 KiB patterns to a few random blocks; a write counts as acknowledged when qemu-io printed its
"wrote" line. Each cycle kills the target with -9 while the writer goes on (its runs fail or
wait for the target), restarts it, and waits for acknowledged writes through the new process.
Afterwards the VDI, read through every sheep, holds every acknowledged write (or a later failed
one), and `dog vdi check` finds nothing to fix. One cycle; KELPIE_SOAK=1: KELPIE_FAULT_CYCLES.
"""
import random
import re
import threading
import time
import unittest

import faultlib
from block_ledger import BlockLedger
from kelpie_harness import Cluster, KelpieIscsi, KelpieTest, qemu_io, wait_until

BLOCK = 64 * 1024
BLOCKS = 256
WRITES_PER_RUN = 4


class IscsiKill(KelpieTest, unittest.TestCase):
    def test_kill9_target_under_qemu_io(self):
        cycles = faultlib.cycles() if faultlib.soak() else 1
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "vol", "%dM" % (BLOCKS * BLOCK >> 20))
        target = KelpieIscsi(self.procs, self.work.path, c.ports, exports=["vol"])
        ledger = BlockLedger(BLOCK)
        stop = threading.Event()
        runs = {"n": 0}

        def writer():
            while not stop.is_set():
                blocks = random.sample(range(BLOCKS), WRITES_PER_RUN)
                patterns = [random.randint(1, 255) for _ in blocks]
                cmds = ["write -P 0x%02x %d %d" % (p, b * BLOCK, BLOCK)
                        for b, p in zip(blocks, patterns)]
                _, out = qemu_io(target.url("vol"), *cmds, timeout=30, allow_timeout=True)
                done = {int(m) for m in re.findall(r"wrote %d/%d bytes at offset (\d+)"
                                                   % (BLOCK, BLOCK), out)}
                for b, p in zip(blocks, patterns):
                    ledger.record(b, bytes([p]) * BLOCK, b * BLOCK in done)
                runs["n"] += 1

        def acked():
            return ledger.counts["acked"]

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for cycle in range(cycles):
                base = acked()
                wait_until(lambda: acked() >= base + 2 * WRITES_PER_RUN, 120,
                           "qemu-io writes before the kill")
                target.kill9()
                time.sleep(random.uniform(0.2, 1.0))
                target.start()
                base = acked()
                wait_until(lambda: acked() >= base + 2 * WRITES_PER_RUN, 120,
                           "qemu-io writes through the restarted target")
                print("cycle %d: target killed and restarted; %d writes acknowledged, %d failed"
                      % (cycle + 1, acked(), ledger.counts["failed"]))
        finally:
            stop.set()
            thread.join(120)
        image_problems = []
        for port in c.ports:
            image = c.dog_ok("vdi", "read", "vol", "0", str(BLOCKS * BLOCK), port=port)
            image_problems += ledger.problems(image, where="sheep %d" % port)
        check = c.dog(["vdi", "check", "vol"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn(b"fixed", check.stdout, check.stdout)
        verified = len(ledger.blocks()) * len(c.ports) - len(image_problems)
        faultlib.report("kelpie-iscsi kill -9", cycles, acked(), len(image_problems), verified,
                        failed_attempts=ledger.counts["failed"], qemu_io_runs=runs["n"])
        self.assertEqual(image_problems, [], "\n".join(image_problems[:50]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
