// End-to-end smoke tests of the SCSI layer over a MemStore: identification, capacity, basic I/O.
#include <gtest/gtest.h>

#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

class ScsiSmokeTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemStore> store = MakeMemStore("smoke", 64ull << 20);
  std::unique_ptr<LogicalUnit> lu = MakeLu(store);
  Nexus nexus = MakeNexus("iqn.test:a");
};

TEST_F(ScsiSmokeTest, StandardInquiryHasConsistentLength) {
  ScsiResult r = RunIn(*lu, nexus, Inquiry(false, 0, 255), 255);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data_in.size(), 96u);
  EXPECT_EQ(r.data_in[0], 0x00);
  EXPECT_EQ(r.data_in[2], 0x06);
  EXPECT_EQ(r.data_in[3], 0x12);
  EXPECT_EQ(r.data_in[4] + 5u, r.data_in.size());
  EXPECT_EQ(r.data_in[5] & 0x30, 0x10);
  EXPECT_EQ(GetBe16(r.data_in, 60), 0x0460);
  EXPECT_EQ(GetBe16(r.data_in, 62), 0x04C0);
  EXPECT_EQ(GetBe16(r.data_in, 64), 0x0960);
  EXPECT_EQ(std::string(r.data_in.begin() + 8, r.data_in.begin() + 16), "KELPIE  ");
  for (uint32_t alloc = 0; alloc <= 255; ++alloc) {
    ScsiResult cut = RunIn(*lu, nexus, Inquiry(false, 0, static_cast<uint16_t>(alloc)), alloc);
    ASSERT_EQ(cut.status, status::kGood);
    ASSERT_EQ(cut.data_in.size(), std::min<size_t>(alloc, 96));
    EXPECT_EQ(cut.scsi_length, cut.data_in.size());
  }
  EXPECT_EQ(RunIn(*lu, nexus, Inquiry(false, 0, 511), 511).data_in,
            RunIn(*lu, nexus, Inquiry(false, 0, 512), 512).data_in);
}

TEST_F(ScsiSmokeTest, InquiryPageWithoutEvpdIsInvalidField) {
  EXPECT_EQ(SenseOf(RunIn(*lu, nexus, Inquiry(false, 0x83, 255), 255)), 0x052400u);
  EXPECT_EQ(SenseOf(RunIn(*lu, nexus, Inquiry(true, 0x42, 255), 255)), 0x052400u);
}

TEST_F(ScsiSmokeTest, EverySupportedVpdPageAnswers) {
  ScsiResult list = RunIn(*lu, nexus, Inquiry(true, 0x00, 255), 255);
  ASSERT_EQ(list.status, status::kGood);
  ASSERT_EQ(GetBe16(list.data_in, 2) + 4u, list.data_in.size());
  for (size_t i = 4; i < list.data_in.size(); ++i) {
    ScsiResult page = RunIn(*lu, nexus, Inquiry(true, list.data_in[i], 1024), 1024);
    ASSERT_EQ(page.status, status::kGood) << std::hex << int(list.data_in[i]);
    EXPECT_EQ(page.data_in[1], list.data_in[i]);
    EXPECT_EQ(GetBe16(page.data_in, 2) + 4u, page.data_in.size());
    if (i > 4) {
      EXPECT_LT(list.data_in[i - 1], list.data_in[i]);
    }
  }
  ScsiResult b0 = RunIn(*lu, nexus, Inquiry(true, 0xB0, 255), 255);
  EXPECT_EQ(GetBe16(b0.data_in, 2), 0x3C);
  EXPECT_EQ(b0.data_in[5], 255);
}

TEST_F(ScsiSmokeTest, ReadCapacity) {
  ScsiResult rc10 = RunIn(*lu, nexus, std::vector<uint8_t>{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
  ASSERT_EQ(rc10.status, status::kGood);
  EXPECT_EQ(GetBe32(rc10.data_in, 0), (64u << 20) / kBs - 1);
  EXPECT_EQ(GetBe32(rc10.data_in, 4), kBs);
  auto rc16 = Cdb16(0x9E, 0, 32, 0x10);
  ScsiResult r = RunIn(*lu, nexus, rc16, 32);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data_in.size(), 32u);
  EXPECT_EQ(GetBe64(r.data_in, 0), (64u << 20) / kBs - 1);
  EXPECT_EQ(r.data_in[14] & 0xC0, 0xC0);
  for (uint32_t alloc = 0; alloc < 16; ++alloc) {
    ScsiResult cut = RunIn(*lu, nexus, Cdb16(0x9E, 0, alloc, 0x10), alloc);
    EXPECT_EQ(cut.status, status::kGood);
    EXPECT_EQ(cut.data_in.size(), alloc);
  }
}

TEST_F(ScsiSmokeTest, WriteThenReadBack) {
  std::vector<uint8_t> data(4 * kBs);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  ASSERT_EQ(RunOut(*lu, nexus, Cdb10(0x2A, 100, 4), data).status, status::kGood);
  ScsiResult r = RunIn(*lu, nexus, Cdb16(0x88, 100, 4), 4 * kBs);
  ASSERT_EQ(r.status, status::kGood);
  EXPECT_EQ(r.data_in, data);
  ScsiResult r12 = RunIn(*lu, nexus, Cdb12(0xA8, 101, 1), kBs);
  EXPECT_EQ(std::vector<uint8_t>(data.begin() + kBs, data.begin() + 2 * kBs), r12.data_in);
  ScsiResult r6 = RunIn(*lu, nexus, std::vector<uint8_t>{0x08, 0, 0, 100, 1, 0}, kBs);
  EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.begin() + kBs), r6.data_in);
}

TEST_F(ScsiSmokeTest, UnknownOpcodeIsInvalidOpcode) {
  EXPECT_EQ(SenseOf(RunNoData(*lu, nexus, {0xC0, 0, 0, 0, 0, 0})), 0x052000u);
  EXPECT_EQ(SenseOf(RunNoData(*lu, nexus, std::vector<uint8_t>(16, 0x8B))), 0x052000u);  // ORWRITE
}

TEST_F(ScsiSmokeTest, ReportLunsListsLunZero) {
  std::vector<uint8_t> cdb(12, 0);
  cdb[0] = 0xA0;
  PutBe32(cdb, 6, 64);
  ScsiResult r = RunIn(*lu, nexus, cdb, 64);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data_in.size(), 16u);
  EXPECT_EQ(GetBe32(r.data_in, 0), 8u);
}

}  // namespace
}  // namespace kelpie::scsi::testing
