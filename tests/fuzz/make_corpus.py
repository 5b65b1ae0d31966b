#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (small, valid
inputs that reach deep into each parser; the fuzzer mutates from there). Run it again after
changing it: `python3 tests/fuzz/make_corpus.py`."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- sheep: 48-byte little-endian headers (proto/header.h), data after CMD_WRITE headers.
WRITE = 0x01


def sd(opcode, union=b"", data=b"", flags=0, data_length=None, ver=2, req_id=1, epoch=0):
    union = union.ljust(32, b"\0")
    if data:
        flags |= WRITE
    dl = len(data) if data_length is None else data_length
    return struct.pack("<BBHIII", ver, opcode, flags, epoch, req_id, dl) + union + data


def obj(oid, offset=0, copies=1, cow=0):
    return struct.pack("<QQBBBxII", oid, cow, copies, 0, 0, 0, offset)


def vdi(size, base=0, copies=1, shift=22, snapid=0):
    return struct.pack("<QIBBBBI", size, base, copies, 0, 0, shift, snapid)


def name(n, tag=b""):
    return n.ljust(256, b"\0") + tag.ljust(256, b"\0") if tag else n.ljust(256, b"\0")


VID = 0x7C2B25
DATA_OID = (VID << 32) | 3
INODE_OID = (1 << 63) | (VID << 32)

sheep_request = {
    "new_vdi_info": sd(0x11, vdi(16 << 20), name(b"fuzz")) + sd(0x14, b"", name(b"fuzz")),
    "write_read": sd(0x01, obj(DATA_OID), b"\x42" * 512) + sd(0x03, obj(DATA_OID, 512), b"x" * 64)
    + sd(0x02, obj(DATA_OID), data_length=1024),
    "inode_read": sd(0x02, obj(INODE_OID), data_length=4664),
    "discard_flush": sd(0x05, obj(DATA_OID)) + sd(0x16, obj(INODE_OID)),
    "compare_write": sd(0xBA, obj(DATA_OID), b"\x42" * 16 + b"\x43" * 16),
    "locks": sd(0x12, vdi(0), name(b"fuzz")) + sd(0xB1) + sd(0x13, vdi(0), name(b"fuzz")),
    "admin": sd(0x82) + sd(0x87) + sd(0x8B) + sd(0xB0) + sd(0x15, data_length=4096) + sd(0x18),
    "client_id": sd(0xB7, b"", b"fuzz-client") + sd(0xB5, obj(DATA_OID)) + sd(0xB6, obj(DATA_OID)),
    "lu_state": sd(0xB8, b"", name(b"fuzz")) + sd(0xB9, b"", b'{"name":"fuzz","expect":0,"state":"x"}'),
    "bad": sd(0x02, obj(DATA_OID), ver=9) + sd(0x7F, b"", b"junk") + sd(0x03, obj(DATA_OID, 1 << 30), b"y"),
    "oversize": sd(0x03, obj(DATA_OID), data_length=0xFFFFFFFF, flags=WRITE),
    "truncated": sd(0x02, obj(DATA_OID))[:30],
}


def peer_union(oid, size=4 << 20, offset=0, tgt_epoch=1):
    return struct.pack("<QQBBBxII", oid, size, 1, 0, 0, tgt_epoch, offset)


sheep_peer = {
    "create_write": sd(0xA2, peer_union(DATA_OID), b"\x11" * 512, ver=0x0A, epoch=1)
    + sd(0xA0, peer_union(DATA_OID), data_length=512, ver=0x0A, epoch=1),
    "write_remove": sd(0xA1, peer_union(DATA_OID, offset=100), b"z" * 100, ver=0x0A, epoch=1)
    + sd(0xA5, peer_union(DATA_OID), ver=0x0A, epoch=1) + sd(0xA3, peer_union(DATA_OID), ver=0x0A, epoch=1),
    "list": sd(0xA4, b"", ver=0x0A, epoch=1, data_length=65536),
    "compare": sd(0xA7, peer_union(DATA_OID), b"\x11" * 8 + b"\x22" * 8, ver=0x0A, epoch=1),
}

# ---- inode: the sd_inode header (proto/inode.h); the first byte also picks the input's shape.
def inode_header(first=b"v", shift=22, size=16 << 20, copies=3):
    b = bytearray(4664)
    b[0:4] = first + b"ol\0"
    struct.pack_into("<Q", b, 536, size)
    b[554] = copies
    b[555] = shift
    struct.pack_into("<I", b, 560, VID)
    return bytes(b)


inode = {
    "header": inode_header(b"\x01"),
    "header_table": inode_header(b"\xff"),
    "snapshot": inode_header(b"\x01")[:520] + struct.pack("<Q", 5) + inode_header(b"\x01")[528:],
    "huge_shift": inode_header(b"\x01", shift=63, size=(1 << 64) - 1),
    "short": b"\x00" * 100,
}

# ---- iSCSI: big-endian 48-byte BHS (iscsi/transport/pdu.h).
def keys(*kv):
    return b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in kv)


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def bhs(opcode, flags, data=b"", ahs=b"", lun=0, itt=1, f20=0, f24=0, f28=0, rest=b""):
    h = struct.pack(">BBBBB", opcode, flags, 0, 0, len(ahs) // 4)
    h += struct.pack(">I", len(data))[1:]
    h += struct.pack(">QIIII", lun, itt, f20, f24, f28) + rest.ljust(16, b"\0")
    return h + ahs + pad(data)


LOGIN_KEYS = keys(("InitiatorName", "iqn.2026-11.io.kelpie:fuzz-init"),
                  ("TargetName", "iqn.2026-11.io.kelpie:fuzz"), ("SessionType", "Normal"),
                  ("AuthMethod", "None"), ("HeaderDigest", "None"), ("DataDigest", "None"),
                  ("MaxRecvDataSegmentLength", "262144"), ("ImmediateData", "Yes"),
                  ("InitialR2T", "No"), ("FirstBurstLength", "65536"))


def login_pdu(flags=0x87, data=LOGIN_KEYS):
    # ISID, TSIH 0 in bytes 8..15; CID 0; CmdSN 1.
    isid = bytes([0x80, 0, 0, 0, 0, 1]) + b"\0\0"
    h = struct.pack(">BBBBB", 0x43, flags, 0, 0, 0) + struct.pack(">I", len(data))[1:]
    h += isid + struct.pack(">IHHII", 1, 0, 0, 1, 0) + b"\0" * 16
    return h + pad(data)


def scsi_cmd(cdb, edtl=512, flags=0xC0, data=b"", ahs=b"", itt=2, cmdsn=1):
    return bhs(0x01, flags, data, ahs, itt=itt, f20=edtl, f24=cmdsn, rest=cdb.ljust(16, b"\0"))


READ10 = bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0])
WRITE10 = bytes([0x2A, 0, 0, 0, 0, 8, 0, 0, 1, 0])
ext_cdb = struct.pack(">HBB", 17, 1, 0) + bytes(16)  # extended CDB AHS (32-byte CDB)
iscsi_pdu = {
    "login_read": b"\x04" + login_pdu() + scsi_cmd(READ10),
    "login_write_immediate": b"\x04" + login_pdu() + scsi_cmd(WRITE10, flags=0xA0, data=b"\x55" * 512),
    "login_text": b"\x04" + login_pdu() + bhs(0x04, 0x80, keys(("SendTargets", "All")), itt=3, f20=0xFFFFFFFF),
    "ext_cdb_ahs": b"\x04" + login_pdu() + scsi_cmd(bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18]), ahs=pad(ext_cdb)),
    "login_continue": b"\x00" + login_pdu(0x40 | 0x04, LOGIN_KEYS[:40]) + login_pdu(0x87, LOGIN_KEYS[40:]),
    "nop_logout": b"\x04" + login_pdu() + bhs(0x00, 0x80, itt=4) + bhs(0x06, 0x80, itt=5),
}


# ---- login_keys: FuzzedDataProvider layout (ConsumeBytes from the front, integers from the back).
def login_keys_input(setup, pdus):
    front, back = b"", b""
    for flags, text in pdus:
        b = bytearray(login_pdu(flags, b"")[:48])
        front += bytes(b) + text
        back = struct.pack("<H", len(text)) + back
    return front + back + bytes([setup])


login_keys = {
    "plain": login_keys_input(0x00, [(0x87, LOGIN_KEYS)]),
    "chap": login_keys_input(0x01, [(0x81, keys(("InitiatorName", "iqn.x:i"), ("TargetName", "iqn.x:t"),
                                                 ("AuthMethod", "CHAP,None"))),
                                    (0x81, keys(("CHAP_A", "5"))),
                                    (0x81, keys(("CHAP_N", "user"), ("CHAP_R", "0x" + "00" * 16)))]),
    "discovery": login_keys_input(0x10, [(0x87, keys(("InitiatorName", "iqn.x:i"), ("SessionType", "Discovery"),
                                                     ("MaxBurstLength", "0x100000"), ("X-com.example", "1")))]),
    "security_then_op": login_keys_input(0x04, [(0x81, keys(("InitiatorName", "iqn.x:i"), ("TargetName", "iqn.x:t"))),
                                                (0x87, keys(("MaxConnections", "1"), ("ErrorRecoveryLevel", "0")))]),
}


# ---- scsi_cdb: FuzzedDataProvider layout: cdb (front), data-out (rest); from the back: setup,
# EDTL (3 bytes, high byte last), CDB length byte ((b % 27) + 6).
def scsi_input(cdb, setup=0x02, edtl=512, data=b""):
    return cdb + data + bytes([len(cdb) - 6]) + struct.pack("<I", edtl)[:3] + bytes([setup])


def be(n, width):
    return n.to_bytes(width, "big")


scsi_cdb = {
    "inquiry": scsi_input(bytes([0x12, 0, 0, 0, 255, 0]), edtl=255),
    "inquiry_vpd83": scsi_input(bytes([0x12, 1, 0x83, 0, 255, 0]), edtl=255),
    "read_capacity16": scsi_input(bytes([0x9E, 0x10]) + bytes(8) + be(32, 4) + b"\0\0", edtl=32),
    "read10": scsi_input(READ10, edtl=512),
    "write10": scsi_input(WRITE10, setup=0x04, edtl=512, data=b"\x5A" * 512),
    "write_same16_unmap": scsi_input(bytes([0x93, 0x08]) + be(0, 8) + be(64, 4) + b"\0\0", setup=0x04,
                                     edtl=512, data=bytes(512)),
    "unmap": scsi_input(bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), setup=0x04, edtl=24,
                        data=be(22, 2) + be(16, 2) + bytes(4) + be(0, 8) + be(8, 4) + bytes(4)),
    "compare_and_write": scsi_input(bytes([0x89, 0]) + be(0, 8) + bytes(3) + b"\x01\0\0", setup=0x04,
                                    edtl=1024, data=bytes(1024)),
    "mode_sense10": scsi_input(bytes([0x5A, 0, 0x3F, 0, 0, 0, 0, 0x10, 0, 0]), edtl=4096),
    "pr_out_register": scsi_input(bytes([0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0]), setup=0x04, edtl=24,
                                  data=bytes(8) + be(0x1234, 8) + bytes(8)),
    "pr_in_read_keys": scsi_input(bytes([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), edtl=4096),
    "report_luns": scsi_input(bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]), edtl=4096),
    "report_opcodes": scsi_input(bytes([0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]), edtl=4096),
    "get_lba_status": scsi_input(bytes([0x9E, 0x12]) + be(0, 8) + be(4096, 4) + b"\0\0", edtl=4096),
}

CORPORA = {"sheep_request": {**sheep_request, **{"peer_" + k: v for k, v in sheep_peer.items()}},
           "inode": inode,
           "iscsi_pdu": iscsi_pdu, "login_keys": login_keys, "scsi_cdb": scsi_cdb}


def main():
    for target, seeds in CORPORA.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            os.remove(os.path.join(d, old))
        for name_, data in seeds.items():
            with open(os.path.join(d, name_), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
