"""Minimal sheepdog protocol v2 client for tests (stdlib only).

Speaks the 48-byte little-endian header directly, so tests can send exactly the bytes they mean,
malformed ones included.
"""
import json
import socket
import struct

HDR = struct.Struct("<BBHIII32s")

OP_CREATE_AND_WRITE_OBJ = 0x01
OP_READ_OBJ = 0x02
OP_WRITE_OBJ = 0x03
OP_NEW_VDI = 0x11
OP_LOCK_VDI = 0x12
OP_RELEASE_VDI = 0x13
OP_GET_VDI_INFO = 0x14
OP_READ_VDIS = 0x15
OP_FLUSH_VDI = 0x16
OP_DEL_VDI = 0x17
OP_GET_NODE_LIST = 0x82
OP_MAKE_FS = 0x84
OP_STAT_CLUSTER = 0x87
OP_SET_CLIENT_ID = 0xB7
OP_LU_STATE_GET = 0xB8
OP_LU_STATE_CAS = 0xB9
OP_COMPARE_AND_WRITE_OBJ = 0xBA
OP_PEER_FLUSH = 0xA9
FLAG_WRITE_BACK = 0x4000

FLAG_WRITE = 0x01
FLAG_COW = 0x02
FLAG_TGT = 0x20
FLAG_LU_FENCE = 0x8000  # Kelpie: lu_fence (u32 @44) carries the LU-state generation acted on

RES_SUCCESS = 0
RES_NO_OBJ = 2
RES_INVALID_PARMS = 5
RES_VDI_LOCKED = 7
RES_NO_VDI = 8
RES_VER_MISMATCH = 0x14
RES_READONLY = 0x1A
RES_INODE_INVALIDATED = 0x1D
RES_VERSION_CONFLICT = 0x87
RES_MISCOMPARE = 0x88
RES_LU_STATE_STALE = 0x8F


def vdi_oid(vid):
    return (1 << 63) | (vid << 32)


def inode_oid(vid):
    return (1 << 63) | (vid << 32)


def data_oid(vid, idx):
    return (vid << 32) | idx


def obj_union(oid, offset=0, cow_oid=0, lu_fence=0):
    """The 32-byte object view of a request header: oid, cow_oid, copies..., offset, lu_fence."""
    return struct.pack("<QQBBBBIII", oid, cow_oid, 0, 0, 0, 0, 0, offset, lu_fence)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def request(self, opcode, union=b"", data=b"", flags=0, data_length=None, proto_ver=2):
        """Sends one request; returns (result, header bytes, data)."""
        if data:
            flags |= FLAG_WRITE
        if data_length is None:
            data_length = len(data)
        rid = self.next_id
        self.next_id += 1
        hdr = HDR.pack(proto_ver, opcode, flags, 0, rid, data_length, union.ljust(32, b"\0"))
        self.sock.sendall(hdr + data)
        return self.read_reply()

    def read_reply(self):
        rsp = self.recv_exact(48)
        _ver, _op, _flags, _epoch, _rid, length, union = HDR.unpack(rsp)
        body = self.recv_exact(length) if length else b""
        result = struct.unpack_from("<I", union, 0)[0]
        return result, rsp, body

    # --- object view ---------------------------------------------------------------------
    def read_obj(self, oid, offset, length, flags=0):
        res, _, body = self.request(OP_READ_OBJ, obj_union(oid, offset), data_length=length, flags=flags)
        return res, body

    def write_obj(self, oid, offset, data, create=False, cow_oid=0, flags=0):
        flags |= FLAG_COW if cow_oid else 0
        union = obj_union(oid, offset, cow_oid)
        op = OP_CREATE_AND_WRITE_OBJ if create else OP_WRITE_OBJ
        res, _, _ = self.request(op, union, data=data, flags=flags)
        return res

    # --- vdi view ------------------------------------------------------------------------
    def vdi_request(self, opcode, name, tag="", size=0, base=0, copies=0, snapid=0, lock_type=0,
                    name_only=False):
        union = struct.pack("<QIBBBBII", size, base, copies, 0, 0, 0, snapid, lock_type)
        payload = name.encode().ljust(256, b"\0")
        if not name_only:
            payload += tag.encode().ljust(256, b"\0")
        res, rsp, _ = self.request(opcode, union, data=payload)
        vid = struct.unpack_from("<I", rsp, 24)[0]
        return res, vid

    def new_vdi(self, name, size, base=0, snapshot=False, copies=0):
        return self.vdi_request(OP_NEW_VDI, name, size=size, base=base, copies=copies,
                                snapid=1 if snapshot else 0, name_only=True)

    def get_vdi_info(self, name, tag="", snapid=0):
        return self.vdi_request(OP_GET_VDI_INFO, name, tag=tag, snapid=snapid)

    def lock_vdi(self, name, lock_type=0):
        return self.vdi_request(OP_LOCK_VDI, name, lock_type=lock_type)

    def set_client_id(self, name):
        return self.request(OP_SET_CLIENT_ID, data=name.encode())[0]

    # --- admin (JSON bodies) ---------------------------------------------------------------
    def admin(self, opcode, body=None, reply_len=0):
        data = json.dumps(body).encode() if body is not None else b""
        res, _, out = self.request(opcode, data=data, data_length=len(data) if data else reply_len)
        return res, (json.loads(out) if out else None)

    def format(self, copies=3):
        return self.admin(OP_MAKE_FS, {"copies": copies})[0]
