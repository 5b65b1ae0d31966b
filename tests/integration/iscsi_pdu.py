"""A raw iSCSI initiator for the malformed-input tests: login PDUs and crafted BHSs."""
import socket
import struct

OP_NOP_OUT = 0x00
OP_SCSI_CMD = 0x01
OP_LOGIN_REQ = 0x03
OP_LOGIN_RSP = 0x23
OP_SCSI_RSP = 0x21
OP_REJECT = 0x3F


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def bhs(opcode, flags, dsl, rest=b"", immediate=False):
    """48 bytes: opcode (+I), flags, 2 zero bytes, TotalAHSLength 0, DSL, then bytes 8..47."""
    head = struct.pack(">BBHB", opcode | (0x40 if immediate else 0), flags, 0, 0) + dsl.to_bytes(3, "big")
    return (head + rest).ljust(48, b"\0")


def keys(**kv):
    return b"".join(("%s=%s" % (k, v)).encode() + b"\0" for k, v in kv.items())


class RawInitiator:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.cmdsn = 1
        self.statsn = 0

    def close(self):
        self.sock.close()

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def recv_pdu(self):
        h = self.recv_exact(48)
        dsl = int.from_bytes(h[5:8], "big")
        data = self.recv_exact(dsl + (-dsl % 4))[:dsl] if dsl else b""
        return h, data

    def login(self, target, digest="None"):
        """One-PDU login straight to full feature phase; returns (status class, detail)."""
        data = keys(InitiatorName="iqn.2026-11.io.kelpie.test:raw", TargetName=target,
                    SessionType="Normal", HeaderDigest=digest, DataDigest="None",
                    MaxRecvDataSegmentLength=8192, InitialR2T="Yes", ImmediateData="Yes",
                    MaxBurstLength=262144, FirstBurstLength=65536)
        isid = bytes([0x80, 0x12, 0x34, 0x56, 0x78, 0x9A])
        rest = isid + struct.pack(">HIHHII", 0, 1, 0, 0, self.cmdsn, 0)
        self.sock.sendall(bhs(OP_LOGIN_REQ, 0x80 | (1 << 2) | 3, len(data), rest, immediate=True) +
                          pad4(data))
        h, _ = self.recv_pdu()
        if h[0] & 0x3F != OP_LOGIN_RSP:
            raise AssertionError("not a login response: %r" % h[:4])
        self.statsn = struct.unpack(">I", h[24:28])[0] + 1
        return h[36], h[37]

    def scsi_bhs(self, cdb, edtl=0, read=False, dsl=0, itt=0x10):
        flags = 0x80 | (0x40 if read else 0)
        rest = bytes(8) + struct.pack(">IIII", itt, edtl, self.cmdsn, self.statsn) + cdb.ljust(16, b"\0")
        self.cmdsn += 1
        return bhs(OP_SCSI_CMD, flags, dsl, rest)

    def test_unit_ready(self):
        """Sends TEST UNIT READY; returns the SCSI status byte of the response."""
        self.sock.sendall(self.scsi_bhs(b"\0" * 6))
        while True:
            h, _ = self.recv_pdu()
            if h[0] & 0x3F == OP_SCSI_RSP:
                return h[3]
