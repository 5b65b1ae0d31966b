"""BlockLedger: what a test's writers wrote to each fixed-size block, acknowledged or not, and the
check that an image read back kept every acknowledged write.

A write that failed may or may not have landed: it stays allowed until a later write of the same
block is acknowledged. So a block must hold its last acknowledged write or one of the failed
writes issued after it (zeros when none was ever acknowledged). One writer per block at a time.
"""
import threading


class BlockLedger:
    def __init__(self, block_size):
        self.block_size = block_size
        self.acked = {}   # block -> payload of the last acknowledged write
        self.maybe = {}   # block -> payloads of failed writes issued after it
        self.counts = {"acked": 0, "failed": 0}
        self.mu = threading.Lock()

    def record(self, block, payload, ok):
        with self.mu:
            if ok:
                self.acked[block] = payload
                self.maybe.pop(block, None)
                self.counts["acked"] += 1
            else:
                self.maybe.setdefault(block, []).append(payload)
                self.counts["failed"] += 1

    def blocks(self):
        with self.mu:
            return sorted(set(self.acked) | set(self.maybe))

    def problems(self, image, where="", first_block=0):
        """Blocks of `image` (which starts at block `first_block`) that hold neither allowed value,
        as readable lines. An empty list means nothing acknowledged was lost."""
        bad = []
        zeros = bytes(self.block_size)
        with self.mu:
            for b in sorted(set(self.acked) | set(self.maybe)):
                off = (b - first_block) * self.block_size
                got = image[off:off + self.block_size]
                allowed = [self.acked.get(b, zeros)] + self.maybe.get(b, [])
                if got not in allowed:
                    state = "acknowledged write" if b in self.acked else "zeros or a failed write"
                    bad.append("block %d%s lost its %s" % (b, " via " + where if where else "",
                                                           state))
        return bad
