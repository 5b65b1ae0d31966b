"""Write-back through kelpie-iscsi (WCE=1): a WRITE without FUA is acknowledged once it is on
every copy and stays dirty on each sheep (kelpie_sheep_writeback_dirty_objects) until the
initiator's SYNCHRONIZE CACHE (FLUSH_VDI); a FUA write is durable at once; and acknowledged
write-back bytes survive the kill -9 of every sheep (they are in the page cache, and a sheep
syncs its store when it starts again)."""
import signal
import subprocess
import unittest

import test_metrics as tm
from kelpie_harness import KelpieIscsi, KelpieTest, Procs, qemu_io, wait_until

MiB = 1 << 20


class WriteBack(KelpieTest, unittest.TestCase):
    def dirty(self, c):
        return [tm.value(tm.scrape(c.metrics_ports[i])[0], "kelpie_sheep_writeback_dirty_objects")
                for i in range(len(c.ports))]

    def hold(self, url, *cmds):
        """qemu-io running cmds and then sleeping (its session, and so its cache, stays open).
        -t writeback: qemu-io's default (writethrough) sets FUA on every write."""
        args = ["qemu-io", "-f", "raw", "-t", "writeback"]
        for cmd in cmds + ("sleep 60000",):
            args += ["-c", cmd]
        return subprocess.Popen(args + [url], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def test_write_back_until_flush_and_across_sheep_death(self):
        c = tm.MetricsCluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "v", "16M")
        t = KelpieIscsi(self.procs, self.work.path, c.ports, exports=["v"])
        url = t.url("v")
        # Allocating writes (CREATE_AND_WRITE) are durable before the ack: nothing dirty after.
        rc, out = qemu_io(url, "write -P 0x11 0 8M")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.dirty(c), [0, 0, 0])

        # FUA: durable before GOOD, nothing left dirty while the session stays open.
        p = self.hold(url, "write -f -P 0x22 0 64k")
        try:
            wait_until(lambda: qemu_io(url, "read -P 0x22 0 64k")[0] == 0, 30, "the FUA write")
            self.assertEqual(self.dirty(c), [0, 0, 0])
        finally:
            Procs.kill9(p)

        # Without FUA: dirty on all three copies until the initiator flushes (qemu-io flushes
        # when it closes the image).
        p = self.hold(url, "write -P 0x33 64k 64k")
        try:
            wait_until(lambda: self.dirty(c) == [1, 1, 1], 30, "a dirty object on each sheep")
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(30)
        r = subprocess.run(["qemu-io", "-f", "raw", "-t", "writeback", "-c", "write -P 0x44 4M 4k",
                            url], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.dirty(c), [0, 0, 0])

        # Acknowledged but never flushed, then every sheep dies at once (and the initiator too,
        # so nothing flushes): the bytes are there when the cluster comes back.
        p = self.hold(url, "write -P 0x55 128k 64k")
        try:
            wait_until(lambda: self.dirty(c) == [1, 1, 1], 30, "a dirty object on each sheep")
            for i in range(3):
                c.kill9(i)
        finally:
            Procs.kill9(p)
        for i in range(3):
            c.start_node(i)
        c.wait_nodes(3)
        expect = bytearray(b"\x11" * (8 * MiB))
        expect[0:64 << 10] = b"\x22" * (64 << 10)
        expect[64 << 10:128 << 10] = b"\x33" * (64 << 10)
        expect[128 << 10:192 << 10] = b"\x55" * (64 << 10)
        expect[4 * MiB:4 * MiB + 4096] = b"\x44" * 4096
        for port in c.ports:
            got = c.dog_ok("vdi", "read", "v", "0", str(8 * MiB), port=port)
            self.assertEqual(got, bytes(expect), "read through sheep on port %d" % port)
        self.assertEqual(self.dirty(c), [0, 0, 0])


if __name__ == "__main__":
    unittest.main()
