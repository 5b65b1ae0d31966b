#include <gtest/gtest.h>

#include "proto/header.h"
#include "proto/inode.h"
#include "proto/oid.h"
#include "proto/request_check.h"
#include "proto/vdi_name.h"

namespace kelpie::proto {
namespace {

TEST(Header, EncodesObjectRequestAtSheepdogOffsets) {
  Header h;
  h.proto_ver = 0x01;
  h.opcode = op::kWriteObj;
  h.flags = flag::kCmdWrite | flag::kTgt;
  h.epoch = 0x11223344;
  h.id = 0xaabbccdd;
  h.data_length = 0x1000;
  h.set_oid(0x007c2b2500000003ull);
  h.set_cow_oid(0x0102030405060708ull);
  h.set_obj_copies(3);
  h.set_offset(0x200);
  const HeaderBytes b = EncodeHeader(h);
  const HeaderBytes want = {0x01, 0x03, 0x21, 0x00, 0x44, 0x33, 0x22, 0x11,
                            0xdd, 0xcc, 0xbb, 0xaa,                           // ver..id
                            0x00, 0x10, 0x00, 0x00,                           // data_length
                            0x03, 0x00, 0x00, 0x00, 0x25, 0x2b, 0x7c, 0x00,   // oid
                            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,   // cow_oid
                            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,   // copies.. tgt_epoch
                            0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};  // offset, pad
  EXPECT_EQ(b, want);
  const Header d = DecodeHeader(b);
  EXPECT_EQ(d.proto_ver, 1);
  EXPECT_EQ(d.opcode, op::kWriteObj);
  EXPECT_EQ(d.flags, flag::kCmdWrite | flag::kTgt);
  EXPECT_EQ(d.epoch, 0x11223344u);
  EXPECT_EQ(d.id, 0xaabbccddu);
  EXPECT_EQ(d.data_length, 0x1000u);
  EXPECT_EQ(d.oid(), 0x007c2b2500000003ull);
  EXPECT_EQ(d.cow_oid(), 0x0102030405060708ull);
  EXPECT_EQ(d.obj_copies(), 3);
  EXPECT_EQ(d.offset(), 0x200u);
}

TEST(Header, VdiRequestAndResponseViews) {
  Header h;
  h.set_vdi_size(4ull << 30);
  h.set_base_vdi_id(0x7c2b25);
  h.set_vdi_copies(2);
  h.set_block_size_shift(22);
  h.set_snapid(7);
  h.set_lock_type(kLockShared);
  const HeaderBytes b = EncodeHeader(h);
  EXPECT_EQ(LoadLE<uint64_t>(&b[16]), 4ull << 30);
  EXPECT_EQ(LoadLE<uint32_t>(&b[24]), 0x7c2b25u);
  EXPECT_EQ(b[28], 2);
  EXPECT_EQ(b[31], 22);
  EXPECT_EQ(LoadLE<uint32_t>(&b[32]), 7u);
  EXPECT_EQ(LoadLE<uint32_t>(&b[36]), 1u);

  Header r = MakeResponse(h, res::kVdiLocked);
  r.set_rsp_vdi_id(0x123456);
  r.set_rsp_vdi_copies(3);
  const HeaderBytes rb = EncodeHeader(r);
  EXPECT_EQ(LoadLE<uint32_t>(&rb[16]), res::kVdiLocked);
  EXPECT_EQ(LoadLE<uint32_t>(&rb[24]), 0x123456u);
  EXPECT_EQ(rb[32], 3);
}

TEST(Oid, Math) {
  EXPECT_EQ(VidToInodeOid(0x7c2b25), 0x807c2b2500000000ull);
  EXPECT_EQ(VidToDataOid(0x7c2b25, 5), 0x007c2b2500000005ull);
  EXPECT_EQ(OidToVid(0x807c2b2500000000ull), 0x7c2b25u);
  EXPECT_EQ(OidToVid(0x007c2b2500000005ull), 0x7c2b25u);
  EXPECT_EQ(DataOidToIdx(0x007c2b2500000005ull), 5u);
  EXPECT_TRUE(IsInodeOid(VidToInodeOid(1)));
  EXPECT_FALSE(IsInodeOid(VidToDataOid(1, 0)));
  EXPECT_TRUE(IsDataOid(VidToDataOid(0xffffff, 0xfffff)));
  EXPECT_EQ(MaxVdiSize(22), 4ull << 40);
}

TEST(Inode, FieldOffsetsAndSize) {
  EXPECT_EQ(kInodeHeaderSize, 4664u);
  EXPECT_EQ(kInodeRefreshSize, 4198968u);
  EXPECT_EQ(kInodeObjectSize, 12587576u);
  Inode in;
  in.name = "vol";
  in.tag = "snap1";
  in.create_time = 0x0102030405060708ull;
  in.snap_ctime = 9;
  in.vdi_size = 1ull << 30;
  in.nr_copies = 3;
  in.block_size_shift = 22;
  in.snap_id = 4;
  in.vdi_id = 0xabcdef;
  in.parent_vdi_id = 0x123;
  in.data_vdi_id.assign(kMaxDataObjs, 0);
  in.data_vdi_id[0] = 0xabcdef;
  in.data_vdi_id[kMaxDataObjs - 1] = 0x123;
  const auto b = EncodeInode(in);
  ASSERT_EQ(b.size(), kInodeRefreshSize);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&b[0]), 3), "vol");
  EXPECT_EQ(b[3], 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&b[256]), 5), "snap1");
  EXPECT_EQ(LoadLE<uint64_t>(&b[512]), 0x0102030405060708ull);
  EXPECT_EQ(LoadLE<uint64_t>(&b[520]), 9u);
  EXPECT_EQ(LoadLE<uint64_t>(&b[536]), 1ull << 30);
  EXPECT_EQ(b[554], 3);
  EXPECT_EQ(b[555], 22);
  EXPECT_EQ(LoadLE<uint32_t>(&b[556]), 4u);
  EXPECT_EQ(LoadLE<uint32_t>(&b[560]), 0xabcdefu);
  EXPECT_EQ(LoadLE<uint32_t>(&b[564]), 0x123u);
  EXPECT_EQ(LoadLE<uint32_t>(&b[4664]), 0xabcdefu);
  EXPECT_EQ(LoadLE<uint32_t>(&b[4664 + 4 * (kMaxDataObjs - 1)]), 0x123u);

  Inode d;
  ASSERT_TRUE(DecodeInode(b, d));
  EXPECT_EQ(d.name, "vol");
  EXPECT_EQ(d.tag, "snap1");
  EXPECT_EQ(d.vdi_id, 0xabcdefu);
  EXPECT_EQ(d.parent_vdi_id, 0x123u);
  EXPECT_TRUE(d.is_snapshot());
  ASSERT_EQ(d.data_vdi_id.size(), kMaxDataObjs);
  EXPECT_EQ(d.data_vdi_id[kMaxDataObjs - 1], 0x123u);
  EXPECT_FALSE(DecodeInode(std::span<const uint8_t>(b.data(), 100), d));
}

// Found with the inode fuzz target: a block_size_shift of 64 or more made object_size() shift
// past the width of uint64_t (undefined behaviour, caught by UBSan). An inode whose object size
// is outside sheepdog's range is corrupt and is not decoded.
TEST(Inode, DecodeRejectsBlockSizeShiftOutOfRange) {
  Inode in;
  in.name = "vol";
  in.vdi_size = 1ull << 30;
  for (int shift : {0, 19, 32, 63, 64, 200, 255}) {
    std::vector<uint8_t> b = EncodeInodeHeader(in);
    b[555] = uint8_t(shift);
    Inode d;
    EXPECT_FALSE(DecodeInode(b, d)) << shift;
  }
  for (int shift : {int(kMinBlockSizeShift), 22, int(kMaxBlockSizeShift)}) {
    std::vector<uint8_t> b = EncodeInodeHeader(in);
    b[555] = uint8_t(shift);
    Inode d;
    ASSERT_TRUE(DecodeInode(b, d)) << shift;
    EXPECT_EQ(d.object_size(), 1ull << shift);
    EXPECT_EQ(d.nr_objects(), ((1ull << 30) + d.object_size() - 1) / d.object_size());
  }
}

// Found with the inode fuzz target (60 s run): a name or tag field with no NUL in its 256 bytes
// decoded as a 256-byte string, which the encoder (at most 255 bytes and the NUL) could not give
// back. sheepdog's names end within their field: such an inode is corrupt and is not decoded.
TEST(Inode, DecodeRejectsUnterminatedNameOrTag) {
  Inode in;
  in.name = std::string(255, 'n');
  in.tag = std::string(255, 't');
  std::vector<uint8_t> b = EncodeInodeHeader(in);
  Inode d;
  ASSERT_TRUE(DecodeInode(b, d));
  EXPECT_EQ(d.name, in.name);
  EXPECT_EQ(d.tag, in.tag);
  for (size_t field : {size_t{0}, size_t{256}}) {
    std::vector<uint8_t> bad = b;
    bad[field + 255] = 'x';  // no terminator left in the field
    EXPECT_FALSE(DecodeInode(bad, d)) << field;
  }
}

TEST(VdiName, HashMatchesSheepdog) {
  EXPECT_EQ(VdiNameHash("test"), 0x7c2b25u);
  EXPECT_EQ(Fnv1a64(""), kFnv1aBasis);
  EXPECT_NE(VdiNameHash("a"), 0u);
}

TEST(RequestCheck, VersionAndDataLength) {
  Header h;
  h.opcode = op::kReadObj;
  h.proto_ver = 0;
  EXPECT_TRUE(VersionSupported(h));  // tgtd sends 0 and 1
  h.proto_ver = kProtoVer + 1;
  EXPECT_FALSE(VersionSupported(h));
  h.opcode = op::kPeerRead;
  h.proto_ver = kPeerProtoVer;
  EXPECT_TRUE(VersionSupported(h));
  h.proto_ver = kPeerProtoVer + 1;
  EXPECT_FALSE(VersionSupported(h));
  h.data_length = kMaxDataLength;
  EXPECT_TRUE(DataLengthAllowed(h));
  h.data_length = kMaxDataLength + 1;
  EXPECT_FALSE(DataLengthAllowed(h));
}

TEST(RequestCheck, VdiNamePayload) {
  Header h;
  h.flags = flag::kCmdWrite;
  std::vector<uint8_t> b(kMaxVdiLen + kMaxVdiTagLen, 0);
  b[0] = 'v';
  b[kMaxVdiLen] = 't';
  VdiNamePayload n;
  ASSERT_TRUE(ParseVdiNamePayload(h, b, n));
  EXPECT_EQ(n.name, "v");
  EXPECT_EQ(n.tag, "t");
  // A name without a NUL stops at its field; the tag field is not read into it.
  std::fill(b.begin(), b.begin() + kMaxVdiLen, uint8_t('x'));
  ASSERT_TRUE(ParseVdiNamePayload(h, b, n));
  EXPECT_EQ(n.name, std::string(kMaxVdiLen, 'x'));
  EXPECT_EQ(n.tag, "t");
  b.push_back(0);  // longer than name + tag
  EXPECT_FALSE(ParseVdiNamePayload(h, b, n));
  EXPECT_FALSE(ParseVdiNamePayload(h, std::vector<uint8_t>(8, 0), n));  // empty name
  h.flags = 0;
  EXPECT_FALSE(ParseVdiNamePayload(h, std::vector<uint8_t>{'v'}, n));  // no data sent
}

}  // namespace
}  // namespace kelpie::proto
