// SPC-4 commands on one LU: REPORT SUPPORTED OPERATION CODES consistency with dispatch, reserved
// CDB bits, MODE SENSE / MODE SELECT, REPORT LUNS and LUN addressing.
#include <gtest/gtest.h>

#include <map>

#include "iscsi/scsi/command_table.h"
#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

std::vector<uint8_t> RsocCdb(uint8_t options, bool rctd, uint8_t op = 0, uint16_t sa = 0,
                             uint32_t alloc = 65535) {
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  c[2] = static_cast<uint8_t>((rctd ? 0x80 : 0) | options);
  c[3] = op;
  PutBe16(c, 4, sa);
  PutBe32(c, 6, alloc);
  return c;
}

class ScsiSpcTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemStore> store = MakeMemStore("spc", 8ull << 20);
  std::unique_ptr<LogicalUnit> lu = MakeLu(store);
  Nexus n = MakeNexus("iqn.test:spc");
};

TEST_F(ScsiSpcTest, ReportSupportedOpcodesMatchesDispatch) {
  for (bool rctd : {false, true}) {
    ScsiResult all = RunIn(*lu, n, RsocCdb(0, rctd), 65535);
    ASSERT_EQ(all.status, status::kGood);
    EXPECT_EQ(GetBe32(all.data_in, 0) + 4u, all.data_in.size());
    const size_t step = rctd ? 20 : 8;
    size_t count = 0;
    for (size_t off = 4; off < all.data_in.size(); off += step, ++count) {
      const uint8_t op = all.data_in[off];
      const uint16_t sa = GetBe16(all.data_in, off + 2);
      const bool servactv = all.data_in[off + 5] & 0x01;
      EXPECT_EQ(bool(all.data_in[off + 5] & 0x02), rctd);
      if (rctd) {
        EXPECT_EQ(GetBe16(all.data_in, off + 8), 0x0A);
      }
      if (!servactv) {
        EXPECT_EQ(sa, 0);
      }
      const uint16_t cdb_length = GetBe16(all.data_in, off + 6);

      ScsiResult one = RunIn(*lu, n, RsocCdb(servactv ? 2 : 1, rctd, op, sa), 65535);
      ASSERT_EQ(one.status, status::kGood) << std::hex << int(op);
      EXPECT_EQ(one.data_in[1] & 0x07, 3);
      EXPECT_EQ(bool(one.data_in[1] & 0x80), rctd);
      ASSERT_EQ(GetBe16(one.data_in, 2), cdb_length);
      EXPECT_EQ(one.data_in[4], op);
      EXPECT_EQ(one.data_in.size(), 4u + cdb_length + (rctd ? 12 : 0));
      const uint8_t usage1 = one.data_in[5];
      // DPO/FUA are advertised exactly where MODE SENSE's DPOFUA promises them.
      if (op == 0x28 || op == 0x2A || op == 0xA8 || op == 0xAA || op == 0x88 || op == 0x8A ||
          op == 0x89) {
        EXPECT_EQ(usage1 & 0x18, 0x18) << std::hex << int(op);
      }
      if (op == 0x2F || op == 0xAF || op == 0x8F || op == 0x2E || op == 0xAE || op == 0x8E) {
        EXPECT_EQ(usage1 & 0x10, 0x10) << std::hex << int(op);
      }
      // Wrong option for the opcode kind: invalid field.
      EXPECT_EQ(SenseOf(RunIn(*lu, n, RsocCdb(servactv ? 1 : 2, rctd, op, sa), 64)), 0x052400u);

      // A dispatched command with a bit outside its usage map set is an invalid field, never
      // executed; a clean CDB of the command is never "invalid opcode".
      std::vector<uint8_t> cdb(one.data_in.begin() + 4, one.data_in.begin() + 4 + cdb_length);
      for (size_t byte = 1; byte < cdb_length; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
          if (cdb[byte] & (1 << bit)) continue;
          std::vector<uint8_t> bad(cdb_length, 0);
          bad[0] = op;
          if (servactv) bad[1] = static_cast<uint8_t>(sa);
          bad[byte] |= static_cast<uint8_t>(1 << bit);
          ScsiResult r = RunNoData(*lu, n, bad);
          EXPECT_EQ(SenseOf(r), 0x052400u)
              << std::hex << int(op) << " byte " << byte << " bit " << bit;
          EXPECT_EQ(GetBe16(r.sense, 16), byte);
        }
      }
    }
    EXPECT_EQ(count, AllCommands().size());
  }
  ScsiResult missing = RunIn(*lu, n, RsocCdb(1, false, 0x8B), 64);  // ORWRITE
  ASSERT_EQ(missing.status, status::kGood);
  EXPECT_EQ(missing.data_in[1] & 0x07, 1);
  EXPECT_EQ(
      SenseOf(RunNoData(
          *lu, n, std::vector<uint8_t>{0x9E, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})),
      0x052400u);
}

std::vector<uint8_t> ModeSense6(uint8_t pc, uint8_t page, uint8_t alloc, bool dbd = false) {
  return {
      0x1A, static_cast<uint8_t>(dbd ? 0x08 : 0), static_cast<uint8_t>(pc << 6 | page), 0, alloc,
      0};
}

// The pages of a MODE SENSE(6) reply: code → bytes.
std::map<uint8_t, std::vector<uint8_t>> Pages6(const std::vector<uint8_t>& d) {
  std::map<uint8_t, std::vector<uint8_t>> pages;
  for (size_t off = 4 + d[3]; off + 2 <= d.size(); off += 2 + d[off + 1]) {
    pages[d[off] & 0x3F] = std::vector<uint8_t>(d.begin() + off, d.begin() + off + 2 + d[off + 1]);
  }
  return pages;
}

TEST_F(ScsiSpcTest, ModeSenseAllPages) {
  ScsiResult r = RunIn(*lu, n, ModeSense6(0, 0x3F, 255), 255);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_LE(r.data_in.size(), 255u);
  EXPECT_EQ(r.data_in[0] + 1u, r.data_in.size());
  EXPECT_EQ(r.data_in[2], 0x10);  // DPOFUA, not write protected
  ASSERT_EQ(r.data_in[3], 8);
  EXPECT_EQ(GetBe32(r.data_in, 4), (8u << 20) / kBs);
  EXPECT_EQ(GetBe(r.data_in, 9, 3), kBs);
  auto pages = Pages6(r.data_in);
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_EQ(pages[0x08].size(), 20u);
  EXPECT_EQ(pages[0x08][2] & 0x04, 0x04);  // WCE=1
  EXPECT_EQ(pages[0x0A].size(), 12u);
  EXPECT_EQ(pages[0x0A][2] & 0x04, 0);  // D_SENSE=0
  EXPECT_EQ(pages[0x1C].size(), 12u);

  ScsiResult control = RunIn(*lu, n, ModeSense6(0, 0x0A, 255, true), 255);
  ASSERT_EQ(control.data_in[3], 0);
  EXPECT_EQ(Pages6(control.data_in)[0x0A], pages[0x0A]);
  ScsiResult changeable = RunIn(*lu, n, ModeSense6(1, 0x0A, 255), 255);
  ASSERT_EQ(changeable.status, status::kGood);
  auto mask = Pages6(changeable.data_in)[0x0A];
  ASSERT_EQ(mask.size(), 12u);
  EXPECT_TRUE(std::all_of(mask.begin() + 2, mask.end(), [](uint8_t b) { return b == 0; }));
  auto caching_mask = Pages6(RunIn(*lu, n, ModeSense6(1, 0x08, 255), 255).data_in)[0x08];
  ASSERT_EQ(caching_mask.size(), 20u);
  EXPECT_EQ(caching_mask[2], 0x04);  // WCE, and nothing else, is changeable
  EXPECT_EQ(SenseOf(RunIn(*lu, n, ModeSense6(3, 0x3F, 255), 255)), 0x053900u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, ModeSense6(0, 0x19, 255), 255)), 0x052400u);

  ScsiResult cut = RunIn(*lu, n, ModeSense6(0, 0x3F, 4), 4);
  EXPECT_EQ(cut.data_in.size(), 4u);
  EXPECT_EQ(cut.scsi_length, 4u);

  std::vector<uint8_t> ms10{0x5A, 0x10, 0x3F, 0, 0, 0, 0, 0x01, 0x00, 0};
  ScsiResult ten = RunIn(*lu, n, ms10, 256);
  ASSERT_EQ(ten.status, status::kGood);
  EXPECT_EQ(GetBe16(ten.data_in, 0) + 2u, ten.data_in.size());
  EXPECT_EQ(ten.data_in[4] & 0x01, 1);  // LONGLBA
  EXPECT_EQ(GetBe16(ten.data_in, 6), 16);
}

TEST_F(ScsiSpcTest, ModeSelectChangesOnlyWriteCacheEnable) {
  const Nexus other = MakeNexus("iqn.test:spc-other");
  lu->NexusLogin(other);
  DrainUnitAttentions(*lu, other);
  ScsiResult current = RunIn(*lu, n, ModeSense6(0, 0x3F, 255), 255);
  ASSERT_EQ(current.status, status::kGood);
  std::vector<uint8_t> params = current.data_in;
  params[0] = 0;  // MODE DATA LENGTH is reserved in MODE SELECT
  std::vector<uint8_t> cdb{0x15, 0x10, 0, 0, static_cast<uint8_t>(params.size()), 0};
  EXPECT_EQ(RunOut(*lu, n, cdb, params).status, status::kGood);
  const size_t caching = 4 + 8;  // header, block descriptor, then the caching page
  ASSERT_EQ(params[caching], 0x08);

  auto bad = params;
  bad[caching + 2] |= 0x01;  // RCD: not changeable
  ScsiResult r = RunOut(*lu, n, cdb, bad);
  EXPECT_EQ(SenseOf(r), 0x052600u);
  EXPECT_EQ(GetBe16(r.sense, 16), caching + 2);
  EXPECT_EQ(
      SenseOf(RunOut(*lu, n, {0x15, 0x11, 0, 0, static_cast<uint8_t>(params.size()), 0}, params)),
      0x052400u);  // SP
  EXPECT_EQ(RunOut(*lu, n, {0x15, 0x10, 0, 0, 0, 0}, {}).status, status::kGood);

  // WCE=1: a WRITE without FUA may stay in the write cache until SYNCHRONIZE CACHE; with FUA
  // it is durable before GOOD.
  ASSERT_EQ(RunOut(*lu, n, Cdb10(0x2A, 0, 1), std::vector<uint8_t>(kBs, 1)).status, status::kGood);
  EXPECT_EQ(store->unflushed_writes(), 1u);
  EXPECT_EQ(store->durable_writes(), 0u);
  ASSERT_EQ(RunOut(*lu, n, Cdb10(0x2A, 1, 1, 0x08), std::vector<uint8_t>(kBs, 2)).status,
            status::kGood);
  EXPECT_EQ(store->durable_writes(), 1u);
  ASSERT_EQ(RunNoData(*lu, n, Cdb10(0x35, 0, 0)).status, status::kGood);
  EXPECT_EQ(store->unflushed_writes(), 0u);
  ASSERT_EQ(RunOut(*lu, n, Cdb10(0x2A, 2, 1), std::vector<uint8_t>(kBs, 3)).status, status::kGood);
  EXPECT_EQ(store->unflushed_writes(), 1u);

  // WCE=0 through one nexus: the cache is flushed, every target reports WCE=0 and writes are
  // durable; the other nexus learns it from MODE PARAMETERS CHANGED.
  auto off = params;
  off[caching + 2] &= uint8_t(~0x04);
  ASSERT_EQ(RunOut(*lu, n, cdb, off).status, status::kGood);
  EXPECT_EQ(store->unflushed_writes(), 0u);
  std::unique_ptr<LogicalUnit> lu2 = MakeLu(store, 2);
  for (LogicalUnit* l : {lu.get(), lu2.get()}) {
    DrainUnitAttentions(*l, n);
    ScsiResult sense = RunIn(*l, n, ModeSense6(0, 0x08, 255), 255);
    ASSERT_EQ(sense.status, status::kGood);
    EXPECT_EQ(Pages6(sense.data_in)[0x08][2] & 0x04, 0);
  }
  const std::vector<uint16_t> uas = DrainUnitAttentions(*lu, other);
  EXPECT_NE(std::find(uas.begin(), uas.end(), 0x2A01), uas.end());
  ASSERT_EQ(RunOut(*lu, n, Cdb10(0x2A, 3, 1), std::vector<uint8_t>(kBs, 4)).status, status::kGood);
  EXPECT_EQ(store->unflushed_writes(), 0u);
  EXPECT_EQ(store->durable_writes(), 2u);
  // The saved-values default stays WCE=1.
  EXPECT_EQ(Pages6(RunIn(*lu, n, ModeSense6(2, 0x08, 255), 255).data_in)[0x08][2] & 0x04, 0x04);
}

TEST_F(ScsiSpcTest, OtherLunsAreNotSupported) {
  ScsiCommand cmd;
  cmd.lun = 3;
  cmd.cdb = {0x00, 0, 0, 0, 0, 0};
  cmd.nexus = n;
  std::promise<ScsiResult> p;
  lu->Execute(cmd, [&](ScsiResult r) { p.set_value(std::move(r)); });
  EXPECT_EQ(SenseOf(p.get_future().get()), 0x052500u);

  cmd.cdb = Inquiry(false, 0, 96);
  cmd.edtl = 96;
  cmd.read = true;
  std::promise<ScsiResult> q;
  lu->Execute(cmd, [&](ScsiResult r) { q.set_value(std::move(r)); });
  ScsiResult inq = q.get_future().get();
  ASSERT_EQ(inq.status, status::kGood);
  EXPECT_EQ(inq.data_in[0], 0x7F);
}

}  // namespace
}  // namespace kelpie::scsi::testing
