// CDB decoding, overflow-free range checks and fixed-format sense layout.
#include <gtest/gtest.h>

#include <limits>

#include "iscsi/scsi/sbc_common.h"
#include "iscsi/scsi/sense.h"
#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

TEST(ScsiCdbTest, DecodesEveryReadWriteLayout) {
  BlockIo six = DecodeBlockIo(std::vector<uint8_t>{0x08, 0xFF, 0x12, 0x34, 0x00, 0x00});
  EXPECT_EQ(six.lba, 0x1F1234u);  // 21 bits: the top 3 bits of byte 1 are not LBA
  EXPECT_EQ(six.blocks, 256u);    // 0 means 256
  EXPECT_EQ(six.length_field, 4);

  BlockIo ten = DecodeBlockIo(Cdb10(0x28, 0xDEADBEEF, 0xFFFF));
  EXPECT_EQ(ten.lba, 0xDEADBEEFu);
  EXPECT_EQ(ten.blocks, 0xFFFFu);
  EXPECT_EQ(ten.length_field, 7);

  BlockIo twelve = DecodeBlockIo(Cdb12(0xAA, 7, 0x01020304));
  EXPECT_EQ(twelve.lba, 7u);
  EXPECT_EQ(twelve.blocks, 0x01020304u);
  EXPECT_EQ(twelve.length_field, 6);

  BlockIo sixteen = DecodeBlockIo(Cdb16(0x8A, 0x0102030405060708ull, 9));
  EXPECT_EQ(sixteen.lba, 0x0102030405060708ull);
  EXPECT_EQ(sixteen.blocks, 9u);
  EXPECT_EQ(sixteen.length_field, 10);

  EXPECT_EQ(DecodeBlockIo(Cdb10(0x41, 5, 6)).blocks, 6u);  // WRITE SAME(10)
  EXPECT_EQ(DecodeBlockIo(Cdb16(0x93, 5, 6)).lba, 5u);     // WRITE SAME(16)
  EXPECT_EQ(DecodeBlockIo(Cdb10(0x35, 1, 2)).blocks, 2u);  // SYNCHRONIZE CACHE(10)
  EXPECT_EQ(DecodeBlockIo(Cdb16(0x90, 3, 4)).blocks, 4u);  // PRE-FETCH(16)
}

TEST(ScsiCdbTest, RangeCheckNeverOverflows) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const uint64_t capacity = 1000;
  EXPECT_TRUE(InRange(0, capacity, capacity));
  EXPECT_TRUE(InRange(capacity, 0, capacity));       // 0 blocks at the end
  EXPECT_FALSE(InRange(capacity + 1, 0, capacity));  // 0 blocks beyond the end
  EXPECT_FALSE(InRange(capacity - 1, 2, capacity));
  EXPECT_FALSE(InRange(kMax, 1, capacity));  // kMax + 1 wraps to 0
  EXPECT_FALSE(InRange(1, kMax, capacity));
  EXPECT_FALSE(InRange(uint64_t{1} << 63, 1, capacity));
  EXPECT_FALSE(InRange(kMax, 0, kMax - 1));
  EXPECT_TRUE(InRange(kMax - 1, 1, kMax));
}

TEST(ScsiCdbTest, FixedSenseLayout) {
  auto s = BuildFixedSense(sense::kMiscompareDuringVerify, 0x1234);
  ASSERT_EQ(s.size(), 18u);
  EXPECT_EQ(s[0], 0xF0);  // VALID + current fixed
  EXPECT_EQ(s[2], 0x0E);
  EXPECT_EQ(GetBe32(s, 3), 0x1234u);
  EXPECT_EQ(s[7], 10);
  EXPECT_EQ(s[12], 0x1D);
  EXPECT_EQ(s[13], 0x00);

  auto field = BuildFixedSense(sense::kInvalidFieldInCdb, {}, FieldPointer{true, 7, 3});
  EXPECT_EQ(field[0], 0x70);
  EXPECT_EQ(field[15], 0x80 | 0x40 | 0x08 | 3);
  EXPECT_EQ(GetBe16(field, 16), 7);

  auto param = BuildFixedSense(sense::kInvalidFieldInParamList, {}, FieldPointer{false, 20, {}});
  EXPECT_EQ(param[15], 0x80);
  EXPECT_EQ(GetBe16(param, 16), 20);

  // INFORMATION beyond 32 bits is left out rather than truncated.
  EXPECT_EQ(BuildFixedSense(sense::kLbaOutOfRange, uint64_t{1} << 40)[0], 0x70);
}

}  // namespace
}  // namespace kelpie::scsi::testing
