"""Malformed requests to sheep: each gets an error reply or closes only its own connection, leaves
a log line saying why, and every other client is served on (a connection opened before the bad
input keeps working, and so does a fresh one)."""
import os
import random
import socket
import struct
import time
import unittest

import sdproto
from kelpie_harness import Cluster, KelpieTest, wait_until

MiB = 1 << 20


class Malformed(KelpieTest, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.c = Cluster(self.procs, self.work.path, nodes=2, copies=2)
        self.c.dog_ok("vdi", "create", "vol", "16M")
        self.port = self.c.ports[0]
        self.good = sdproto.Conn(self.port)
        _, self.vid = self.good.get_vdi_info("vol")
        self.oid = sdproto.data_oid(self.vid, 0)
        self.assertEqual(self.good.write_obj(self.oid, 0, b"\x42" * 4096, create=True), 0)

    def tearDown(self):
        self.good.close()
        super().tearDown()

    def log(self):
        with open(os.path.join(self.work.path, "sheep0", "sheep.log"), errors="replace") as f:
            return f.read()

    def assert_still_serving(self):
        res, body = self.good.read_obj(self.oid, 0, 4096)
        self.assertEqual((res, body), (0, b"\x42" * 4096))
        fresh = sdproto.Conn(self.port)
        self.assertEqual(fresh.read_obj(self.oid, 0, 16), (0, b"\x42" * 16))
        fresh.close()
        self.assertEqual(self.c.node_count(self.port), 2)

    def assert_closed(self, conn):
        conn.sock.settimeout(10)
        try:
            self.assertEqual(conn.sock.recv(1), b"")
        except ConnectionResetError:
            pass

    def test_unknown_opcode(self):
        bad = sdproto.Conn(self.port)
        for opcode in (0x7F, 0x99, 0xFF):
            res, rsp, body = bad.request(opcode, data=b"junk")
            self.assertEqual(res, sdproto.RES_INVALID_PARMS, hex(opcode))
            self.assertEqual(rsp[1], opcode)
        # The same connection still works after the error replies.
        self.assertEqual(bad.read_obj(self.oid, 0, 8), (0, b"\x42" * 8))
        bad.close()
        wait_until(lambda: "unknown opcode" in self.log(), 10, "a log line for the unknown opcode")
        self.assert_still_serving()

    def test_flush_requests(self):
        """FLUSH_VDI and PEER_FLUSH (write-back): a vid list that is not whole u32s is refused, a
        flush naming an unknown VDI (or none) succeeds doing nothing, a write-back write reads
        back at once; the connection and everyone else are served on."""
        bad = sdproto.Conn(self.port)
        res, _, _ = bad.request(sdproto.OP_PEER_FLUSH, sdproto.obj_union(0), data=b"\x01\x02\x03",
                                proto_ver=0x0A)
        self.assertEqual(res, sdproto.RES_INVALID_PARMS)
        for vid in (0xABCDEF, self.vid):
            union = sdproto.obj_union(sdproto.inode_oid(vid))
            self.assertEqual(bad.request(sdproto.OP_FLUSH_VDI, union)[0], sdproto.RES_SUCCESS)
        self.assertEqual(bad.request(sdproto.OP_FLUSH_VDI)[0], sdproto.RES_SUCCESS)
        self.assertEqual(bad.write_obj(self.oid, 0, b"\x43" * 512, flags=sdproto.FLAG_WRITE_BACK),
                         0)
        self.assertEqual(bad.read_obj(self.oid, 0, 4)[1], b"\x43" * 4)
        self.assertEqual(bad.write_obj(self.oid, 0, b"\x42" * 512), 0)
        bad.close()
        self.assert_still_serving()

    def test_wrong_proto_ver(self):
        bad = sdproto.Conn(self.port)
        for ver in (3, 0x7F, 0xFF):
            union = sdproto.obj_union(self.oid)
            res, _, body = bad.request(sdproto.OP_READ_OBJ, union, data_length=16, proto_ver=ver)
            self.assertEqual(res, sdproto.RES_VER_MISMATCH, ver)
            self.assertEqual(body, b"")
        # A write with a bad version is refused and its payload consumed, not applied.
        union = sdproto.obj_union(self.oid)
        res, _, _ = bad.request(sdproto.OP_WRITE_OBJ, union, data=b"\x66" * 4096, proto_ver=9)
        self.assertEqual(res, sdproto.RES_VER_MISMATCH)
        self.assertEqual(bad.read_obj(self.oid, 0, 8), (0, b"\x42" * 8))
        bad.close()
        wait_until(lambda: "protocol version 0x3 not supported" in self.log(), 10, "a log line")
        self.assert_still_serving()

    def test_data_length_over_limit(self):
        bad = sdproto.Conn(self.port)
        union = sdproto.obj_union(self.oid)
        hdr = sdproto.HDR.pack(2, sdproto.OP_WRITE_OBJ, sdproto.FLAG_WRITE, 0, 77, 0xFFFFFFF0,
                               union)
        bad.send_raw(hdr + b"\x66" * 4096)
        res, rsp, _ = bad.read_reply()
        self.assertEqual(res, sdproto.RES_INVALID_PARMS)
        self.assertEqual(struct.unpack_from("<I", rsp, 8)[0], 77)
        self.assert_closed(bad)
        bad.close()
        wait_until(lambda: "over the limit" in self.log(), 10, "a log line for the oversize request")
        self.assert_still_serving()

    def test_4gib_data_length(self):
        # A read asking for 4 GiB - 1 bytes, and a write announcing as much without sending it:
        # each answered and its connection closed before anything that size is allocated.
        for flags in (0, sdproto.FLAG_WRITE):
            bad = sdproto.Conn(self.port)
            union = sdproto.obj_union(self.oid)
            bad.send_raw(sdproto.HDR.pack(2, sdproto.OP_READ_OBJ if flags == 0 else sdproto.OP_WRITE_OBJ,
                                          flags, 0, 78, 0xFFFFFFFF, union))
            res, rsp, body = bad.read_reply()
            self.assertEqual((res, body), (sdproto.RES_INVALID_PARMS, b""))
            self.assertEqual(struct.unpack_from("<I", rsp, 8)[0], 78)
            self.assert_closed(bad)
            bad.close()
        wait_until(lambda: "data_length 4294967295 over the limit" in self.log(), 10, "a log line")
        self.assert_still_serving()

    def test_offset_past_object(self):
        bad = sdproto.Conn(self.port)
        obj_size = 4 * MiB
        for offset, length in ((obj_size, 1), (obj_size - 8, 16), (0xFFFFFFFF, 4096)):
            self.assertEqual(bad.read_obj(self.oid, offset, length), (sdproto.RES_INVALID_PARMS, b""))
            res, _, _ = bad.request(sdproto.OP_WRITE_OBJ, sdproto.obj_union(self.oid, offset),
                                    data=b"\x66" * length)
            self.assertEqual(res, sdproto.RES_INVALID_PARMS)
        # Errors only: the connection goes on, and nothing was written.
        self.assertEqual(bad.read_obj(self.oid, 0, 8), (0, b"\x42" * 8))
        bad.close()
        self.assert_still_serving()

    def test_truncated_header(self):
        bad = sdproto.Conn(self.port)
        bad.send_raw(b"\x02\x02\x00\x00" + b"\x01" * 20)   # 24 of 48 bytes, then gone
        bad.sock.shutdown(socket.SHUT_WR)
        self.assert_closed(bad)
        bad.close()
        wait_until(lambda: "truncated header (24 of 48 bytes)" in self.log(), 10, "a log line")
        self.assert_still_serving()

    def test_client_vanishes_mid_request(self):
        bad = sdproto.Conn(self.port)
        union = sdproto.obj_union(self.oid)
        hdr = sdproto.HDR.pack(2, sdproto.OP_WRITE_OBJ, sdproto.FLAG_WRITE, 0, 5, 4096, union)
        bad.send_raw(hdr + b"\x66" * 1000)
        bad.close()
        wait_until(lambda: "vanished mid-request (1000 of 4096" in self.log(), 10, "a log line")
        # Nothing of the half-sent write was applied.
        self.assert_still_serving()

    def test_garbage_stream(self):
        # Random bytes (fixed seed, so a failure reproduces): whatever they decode to, the sheep
        # answers or closes, and lives on.
        rnd = random.Random(20261129).randbytes(48 * 64)
        bad = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            bad.sendall(rnd)
            bad.shutdown(socket.SHUT_WR)
            deadline = time.time() + 20
            while time.time() < deadline and bad.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        finally:
            bad.close()
        self.assert_still_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
