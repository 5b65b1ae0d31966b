"""Randomized model test of multipath coherence against a real 3-sheep cluster.

Simulated participants, each a tgtd-style client with its own cached inode, its own client id
and a gateway sheep of its own, do random reads, writes (first writes copy-on-write from the
clone's parent), snapshots of the VDI and leaves (a participant drops its connection; a new one
takes its place). A model holds the last acknowledged bytes of every block; steps run one at a
time, so every read must return exactly that: any difference is a stale (or lost) block and fails
the run. Seeded (KELPIE_MODEL_SEED, KELPIE_MODEL_STEPS) and reproducible.
"""
import os
import random
import struct
import unittest

import sdproto
from kelpie_harness import Cluster, KelpieTest

BLOCK = 4096
OBJ_SHIFT = 20                      # 1 MiB objects keep copy-on-write cheap
OBJ = 1 << OBJ_SHIFT
VDI_SIZE = 16 * OBJ
INODE_REFRESH = 4198968
TABLE_OFF = 4664
RES_OK = 0


class Participant:
    """The client side of the protocol, as tgtd's sheepdog store does it."""

    def __init__(self, port, name, client_id):
        self.conn = sdproto.Conn(port)
        self.name = name
        assert self.conn.set_client_id(client_id) == RES_OK
        self.refreshes = 0
        self.relock()

    def close(self):
        self.conn.close()

    def relock(self):
        res, vid = self.conn.lock_vdi(self.name, lock_type=1)
        assert res == RES_OK, "lock: %#x" % res
        self.vid = vid
        self.reload()

    def reload(self):
        self.refreshes += 1
        for _ in range(16):
            res, body = self.conn.read_obj(sdproto.vdi_oid(self.vid), 0, INODE_REFRESH,
                                           flags=sdproto.FLAG_TGT)
            assert res == RES_OK, "refresh: %#x" % res
            snap_ctime = struct.unpack_from("<Q", body, 520)[0]
            self.table = list(struct.unpack_from("<%dI" % (VDI_SIZE // OBJ), body, TABLE_OFF))
            if not snap_ctime:
                return
            # The working VDI became a snapshot: follow the name.
            res, self.vid = self.conn.lock_vdi(self.name, lock_type=1)
            assert res == RES_OK
        raise AssertionError("inode never settled")

    def read(self, offset, length):
        idx, off = divmod(offset, OBJ)
        for _ in range(32):
            owner = self.table[idx]
            if owner == 0:
                res, _ = self.conn.read_obj(sdproto.vdi_oid(self.vid), 0, 1, flags=sdproto.FLAG_TGT)
                if res == RES_OK:
                    return b"\0" * length
            else:
                res, body = self.conn.read_obj(sdproto.data_oid(owner, idx), off, length,
                                               flags=sdproto.FLAG_TGT)
                if res == RES_OK:
                    return body
            assert res == sdproto.RES_INODE_INVALIDATED, "read: %#x" % res
            self.reload()
        raise AssertionError("read never settled")

    def write(self, offset, data):
        idx, off = divmod(offset, OBJ)
        for _ in range(32):
            owner = self.table[idx]
            if owner == self.vid:
                res = self.conn.write_obj(sdproto.data_oid(self.vid, idx), off, data,
                                          flags=sdproto.FLAG_TGT)
            else:
                cow = sdproto.data_oid(owner, idx) if owner else 0
                res = self.conn.write_obj(sdproto.data_oid(self.vid, idx), off, data, create=True,
                                          cow_oid=cow, flags=sdproto.FLAG_TGT)
                if res == RES_OK:
                    self.table[idx] = self.vid
                    res = self.conn.write_obj(sdproto.vdi_oid(self.vid), TABLE_OFF + 4 * idx,
                                              struct.pack("<I", self.vid), flags=sdproto.FLAG_TGT)
                    assert res == RES_OK, "index write: %#x" % res
            if res == RES_OK:
                return
            if res == sdproto.RES_READONLY:
                self.relock()
            elif res == sdproto.RES_INODE_INVALIDATED:
                self.reload()
            else:
                raise AssertionError("write: %#x" % res)
        raise AssertionError("write never settled")


class CoherenceModel(KelpieTest, unittest.TestCase):
    def test_random_steps_never_read_stale(self):
        seed = int(os.environ.get("KELPIE_MODEL_SEED", "20261129"))
        steps = int(os.environ.get("KELPIE_MODEL_STEPS", "2000"))
        rnd = random.Random(seed)
        c = Cluster(self.procs, self.work.path, nodes=3, copies=2)
        c.dog_ok("vdi", "create", "-z", str(OBJ_SHIFT), "base", str(VDI_SIZE))
        blocks = sorted(rnd.sample(range(VDI_SIZE // BLOCK), 96))
        model = {b: b"\0" * BLOCK for b in blocks}
        for b in blocks[::3]:   # the parent holds data in some blocks
            model[b] = rnd.randbytes(BLOCK)
            c.dog_ok("vdi", "write", "base", str(b * BLOCK), str(BLOCK), input=model[b])
        c.dog_ok("vdi", "snapshot", "-s", "gold", "base")
        c.dog_ok("vdi", "clone", "-s", "gold", "base", "vol")

        admin = sdproto.Conn(c.ports[0])
        generation = [0]

        def new_participant(i):
            generation[0] += 1
            return Participant(rnd.choice(c.ports), "vol", "model-p%d-g%d" % (i, generation[0]))

        parts = [new_participant(i) for i in range(4)]
        counts = {"read": 0, "write": 0, "snapshot": 0, "leave": 0}
        for step in range(steps):
            r = rnd.random()
            who = rnd.randrange(len(parts))
            p = parts[who]
            block = rnd.choice(blocks)
            where = "seed %d step %d participant %d block %d" % (seed, step, who, block)
            if r < 0.50:
                got = p.read(block * BLOCK, BLOCK)
                if got != model[block]:
                    self.fail("stale read at %s: got %r..., want %r..." %
                              (where, got[:8], model[block][:8]))
                counts["read"] += 1
            elif r < 0.93:
                data = rnd.randbytes(BLOCK)
                p.write(block * BLOCK, data)
                model[block] = data
                counts["write"] += 1
            elif r < 0.96:
                res, vid = admin.get_vdi_info("vol")
                self.assertEqual(res, RES_OK, where)
                res, _ = admin.new_vdi("vol", 0, base=vid, snapshot=True)
                self.assertEqual(res, RES_OK, where)
                counts["snapshot"] += 1
            else:
                p.close()
                parts[who] = new_participant(who)
                counts["leave"] += 1
        refreshes = sum(p.refreshes for p in parts)
        print("seed %d: %d steps %s, %d refreshes by the current participants" %
              (seed, steps, counts, refreshes))
        # Everything, read once more through every sheep by a fresh participant.
        for port in c.ports:
            checker = Participant(port, "vol", "model-checker-%d" % port)
            for b in blocks:
                self.assertEqual(checker.read(b * BLOCK, BLOCK), model[b], "final block %d" % b)
            checker.close()
        for p in parts:
            p.close()
        admin.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
