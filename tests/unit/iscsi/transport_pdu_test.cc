#include <gtest/gtest.h>

#include <numeric>

#include "iscsi/transport/pdu.h"

namespace kelpie::iscsi {
namespace {

std::vector<uint8_t> WireDigest(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> out;
  AppendDigest(out, Crc32c(bytes));
  return out;
}

TEST(TransportPdu, Crc32cRfcVectors) {
  // RFC 3720 appendix B.4 / RFC 7143: values and their little-endian wire bytes.
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xff), inc(32), dec(32);
  std::iota(inc.begin(), inc.end(), 0);
  for (int i = 0; i < 32; ++i) dec[i] = uint8_t(31 - i);
  EXPECT_EQ(WireDigest(zeros), (std::vector<uint8_t>{0xaa, 0x36, 0x91, 0x8a}));
  EXPECT_EQ(WireDigest(ones), (std::vector<uint8_t>{0x43, 0xab, 0xa8, 0x62}));
  EXPECT_EQ(WireDigest(inc), (std::vector<uint8_t>{0x4e, 0x79, 0xdd, 0x46}));
  EXPECT_EQ(WireDigest(dec), (std::vector<uint8_t>{0x5c, 0xdb, 0x3f, 0x11}));
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c(std::span(reinterpret_cast<const uint8_t*>(check.data()), check.size())),
            0xe3069283u);
  EXPECT_EQ(DigestFromWire(WireDigest(zeros).data()), 0x8a9136aau);
}

TEST(TransportPdu, DataDigestCoversPadding) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  std::vector<uint8_t> padded = data;
  padded.resize(8, 0);
  EXPECT_EQ(DataDigest(data), Crc32c(padded));
}

TEST(TransportPdu, BigEndianHelpers) {
  uint8_t b[8] = {};
  PutBe16(b, 0x1234);
  EXPECT_EQ(b[0], 0x12);
  EXPECT_EQ(GetBe16(b), 0x1234);
  PutBe24(b, 0xabcdef);
  EXPECT_EQ(GetBe24(b), 0xabcdefu);
  PutBe32(b, 0xdeadbeef);
  EXPECT_EQ(b[3], 0xef);
  EXPECT_EQ(GetBe32(b), 0xdeadbeefu);
  PutBe64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(GetBe64(b), 0x0102030405060708ull);
}

TEST(TransportPdu, BhsFieldsRoundTrip) {
  Pdu p = Pdu::Make(op::kScsiResponse, flag::kFinal | flag::kResidUnderflow, 0x11223344);
  p.set_lun(0x0001000000000000ull);
  p.set_u32(off::kStatSn, 7);
  p.set_u32(off::kExpCmdSn, 8);
  p.set_u32(off::kMaxCmdSn, 9);
  p.set_u32(off::kResidual, 512);
  p.set_data({1, 2, 3});
  EXPECT_EQ(p.opcode(), op::kScsiResponse);
  EXPECT_FALSE(p.immediate());
  EXPECT_TRUE(p.final_bit());
  EXPECT_EQ(p.itt(), 0x11223344u);
  EXPECT_EQ(p.lun(), 0x0001000000000000ull);
  EXPECT_EQ(p.data_length(), 3u);
  EXPECT_EQ(p.u32(off::kResidual), 512u);

  const auto wire = EncodePdu(p, false, false);
  ASSERT_EQ(wire.size(), 48u + 4u);  // data padded to 4
  EXPECT_EQ(wire[0], op::kScsiResponse);
  EXPECT_EQ(GetBe24(&wire[5]), 3u);
  EXPECT_EQ(wire[51], 0);  // padding
  Pdu back;
  std::copy(wire.begin(), wire.begin() + 48, back.bhs.begin());
  EXPECT_EQ(back.bhs, p.bhs);
}

TEST(TransportPdu, EncodeWithDigests) {
  Pdu p = Pdu::Make(op::kNopIn, flag::kFinal, 1);
  p.set_data({9, 9, 9, 9, 9});
  const auto wire = EncodePdu(p, true, true);
  ASSERT_EQ(wire.size(), 48u + 4 + 8 + 4);
  EXPECT_EQ(DigestFromWire(&wire[48]), Crc32c(std::span(wire.data(), 48)));
  EXPECT_EQ(DigestFromWire(&wire[60]), DataDigest(p.data));
  // No data: no data digest.
  Pdu empty = Pdu::Make(op::kNopIn, flag::kFinal, 1);
  EXPECT_EQ(EncodePdu(empty, true, true).size(), 52u);
}

TEST(TransportPdu, SerialNumberArithmetic) {
  EXPECT_TRUE(SnLess(1, 2));
  EXPECT_TRUE(SnLess(0xffffffffu, 0));
  EXPECT_FALSE(SnLess(5, 5));
  EXPECT_TRUE(SnLessEq(5, 5));
  EXPECT_FALSE(SnLess(2, 1));
}

}  // namespace
}  // namespace kelpie::iscsi
