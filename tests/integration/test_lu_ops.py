"""Sheep's two services for multipath iSCSI targets, driven raw through different gateways.

LU_STATE_GET / LU_STATE_CAS: one versioned state per VDI name; a CAS with a stale version loses
(VERSION_CONFLICT) and changes nothing; an acknowledged CAS is visible through every sheep, and
survives a whole-cluster restart. COMPARE_AND_WRITE_OBJ: compares and writes in one step,
answers MISCOMPARE with the offset of the first differing byte and writes nothing then; many
clients flipping one word through three gateways at once never both win the same flip; bad
requests (odd length, inode object, past the object) are INVALID_PARMS.
"""
import struct
import threading
import unittest

import sdproto as sd
from kelpie_harness import Cluster, KelpieTest

MiB = 1 << 20


def caw(conn, oid, offset, compare, data):
    res, rsp, _ = conn.request(sd.OP_COMPARE_AND_WRITE_OBJ, sd.obj_union(oid, offset),
                               data=compare + data)
    return res, struct.unpack_from("<Q", rsp, 24)[0]


class LuOps(KelpieTest, unittest.TestCase):
    def test_lu_state_cas(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=2)
        conns = [sd.Conn(p) for p in c.ports]
        c.dog_ok("vdi", "create", "v", "16M")
        vid = conns[0].get_vdi_info("v")[1]
        res, st = conns[0].admin(sd.OP_LU_STATE_GET, {"name": "lu"}, reply_len=4096)
        self.assertEqual((res, st["version"], st["state"]), (0, 0, ""))
        gen = st["generation"]

        def fenced_read(conn, fence):
            union = sd.obj_union(sd.vdi_oid(vid), 0, lu_fence=fence)
            return conn.request(sd.OP_READ_OBJ, union, data_length=1, flags=sd.FLAG_LU_FENCE)[0]

        self.assertEqual(fenced_read(conns[2], gen), 0)
        res, out = conns[1].admin(sd.OP_LU_STATE_CAS, {"name": "lu", "expect": 0, "state": "one"})
        self.assertEqual((res, out["version"], out["generation"]), (0, 1, gen + 1))
        # Every gateway serves it as soon as the CAS is acknowledged, and refuses I/O fenced with
        # the generation from before.
        for conn in conns:
            res, st = conn.admin(sd.OP_LU_STATE_GET, {"name": "lu"}, reply_len=4096)
            self.assertEqual(st, {"version": 1, "state": "one", "generation": gen + 1})
            self.assertEqual(fenced_read(conn, gen), sd.RES_LU_STATE_STALE)
            self.assertEqual(fenced_read(conn, gen + 1), 0)
        res, out = conns[2].admin(sd.OP_LU_STATE_CAS, {"name": "lu", "expect": 0, "state": "two"})
        self.assertEqual((res, out["version"]), (sd.RES_VERSION_CONFLICT, 1))
        res, st = conns[2].admin(sd.OP_LU_STATE_GET, {"name": "lu"}, reply_len=4096)
        self.assertEqual(st["state"], "one")
        for bad in ({}, {"name": ""}, {"name": "lu", "expect": "x", "state": "s"},
                    {"name": "lu", "expect": 1}):
            res, _ = conns[0].admin(sd.OP_LU_STATE_CAS, bad)
            self.assertEqual(res, sd.RES_INVALID_PARMS, bad)
        for conn in conns:
            conn.close()
        # Kept across a whole-cluster restart.
        c.dog_ok("cluster", "shutdown")
        for i in range(3):
            c.sheep[i].wait(timeout=30)
        for i in range(3):
            c.start_node(i)
        c.wait_nodes(3)
        conn = sd.Conn(c.ports[2])
        res, st = conn.admin(sd.OP_LU_STATE_GET, {"name": "lu"}, reply_len=4096)
        self.assertEqual(st, {"version": 1, "state": "one", "generation": gen + 1})
        conn.close()

    def test_compare_and_write(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "v", "16M")
        conn = sd.Conn(c.ports[0])
        res, vid = conn.get_vdi_info("v")
        self.assertEqual(res, 0)
        oid = sd.data_oid(vid, 0)
        self.assertEqual(conn.write_obj(oid, 0, b"\0" * 4096, create=True), 0)
        self.assertEqual(caw(conn, oid, 512, b"\0" * 8, b"ABCDEFGH"), (0, 0))
        res, where = caw(conn, oid, 512, b"ABCDxFGH", b"zzzzzzzz")
        self.assertEqual((res, where), (sd.RES_MISCOMPARE, 4))
        res, body = conn.read_obj(oid, 512, 8)
        self.assertEqual(body, b"ABCDEFGH")
        self.assertEqual(caw(conn, oid, 0, b"\0" * 3, b"ab")[0], sd.RES_INVALID_PARMS)
        self.assertEqual(caw(conn, sd.vdi_oid(vid), 0, b"\0", b"a")[0], sd.RES_INVALID_PARMS)
        self.assertEqual(caw(conn, oid, 4 * MiB - 2, b"\0" * 4, b"a" * 4)[0], sd.RES_INVALID_PARMS)
        self.assertEqual(caw(conn, sd.data_oid(vid, 1), 0, b"\0", b"a")[0], sd.RES_NO_OBJ)
        conn.close()

        # Six clients through three gateways flip word 0 between 0 and 1, one direction each
        # pair: every successful flip must be matched by the other direction, so the number of
        # 0→1 wins minus 1→0 wins is the final value (0 or 1).
        wins = {0: 0, 1: 0}
        lock = threading.Lock()
        errors = []

        def flipper(port, frm):
            cn = sd.Conn(port)
            for _ in range(150):
                res, _ = caw(cn, oid, 0, struct.pack("<I", frm), struct.pack("<I", 1 - frm))
                if res == 0:
                    with lock:
                        wins[frm] += 1
                elif res != sd.RES_MISCOMPARE:
                    errors.append(res)
            cn.close()

        ts = [threading.Thread(target=flipper, args=(c.ports[i % 3], i % 2)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        conn = sd.Conn(c.ports[1])
        _, body = conn.read_obj(oid, 0, 4)
        final = struct.unpack("<I", body)[0]
        self.assertEqual(wins[0] - wins[1], final, wins)
        self.assertGreater(wins[0], 0)
        conn.close()


if __name__ == "__main__":
    unittest.main()
