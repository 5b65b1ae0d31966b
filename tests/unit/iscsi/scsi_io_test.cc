// SBC-3 commands on one LU: range checks, residual lengths, protection fields, VERIFY, COMPARE
// AND WRITE, WRITE SAME, UNMAP, GET LBA STATUS and backend error mapping.
#include <gtest/gtest.h>

#include <limits>

#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

constexpr uint64_t kLuBytes = 32ull << 20;
constexpr uint64_t kBlocks = kLuBytes / kBs;

std::vector<uint8_t> Pattern(size_t blocks, uint8_t seed) {
  std::vector<uint8_t> d(blocks * kBs);
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(seed + i * 13);
  return d;
}

class ScsiIoTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemStore> store = MakeMemStore("io", kLuBytes);
  std::unique_ptr<LogicalUnit> lu = MakeLu(store);
  Nexus n = MakeNexus("iqn.test:io");

  std::vector<uint8_t> ReadBlocks(uint64_t lba, uint32_t blocks) {
    ScsiResult r = RunIn(*lu, n, Cdb16(0x88, lba, blocks), blocks * kBs);
    EXPECT_EQ(r.status, status::kGood);
    return r.data_in;
  }
  void WriteBlocks(uint64_t lba, const std::vector<uint8_t>& data) {
    ASSERT_EQ(
        RunOut(*lu, n, Cdb16(0x8A, lba, static_cast<uint32_t>(data.size() / kBs)), data).status,
        status::kGood);
  }
};

TEST_F(ScsiIoTest, RangeChecksAtTheEnd) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x88, kMax, 1), kBs)), 0x052100u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x88, uint64_t{1} << 63, 1), kBs)), 0x052100u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x88, kBlocks - 1, 2), 2 * kBs)), 0x052100u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x88, kBlocks + 1, 0), 0)), 0x052100u);
  EXPECT_EQ(RunIn(*lu, n, Cdb16(0x88, kBlocks - 1, 1), kBs).status, status::kGood);
  EXPECT_EQ(RunIn(*lu, n, Cdb10(0x28, 0, 0), 0).status, status::kGood);
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb10(0x2A, kBlocks, 1), Pattern(1, 1))), 0x052100u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x8F, kMax, 1), 0)), 0x052100u);  // VERIFY(16)
}

TEST_F(ScsiIoTest, ReadResidualsFollowEdtl) {
  WriteBlocks(0, Pattern(2, 5));
  ScsiResult none = RunIn(*lu, n, Cdb10(0x28, 0, 1), 0);
  EXPECT_EQ(none.status, status::kGood);
  EXPECT_TRUE(none.data_in.empty());
  EXPECT_EQ(none.scsi_length, kBs);

  ScsiResult big = RunIn(*lu, n, Cdb10(0x28, 0, 1), 10000);
  EXPECT_EQ(big.data_in.size(), kBs);
  EXPECT_EQ(big.scsi_length, kBs);

  ScsiResult small = RunIn(*lu, n, Cdb10(0x28, 0, 1), 200);
  EXPECT_EQ(small.data_in.size(), 200u);
  EXPECT_EQ(small.scsi_length, kBs);
  EXPECT_TRUE(std::equal(small.data_in.begin(), small.data_in.end(), Pattern(1, 5).begin()));

  ScsiResult half = RunIn(*lu, n, Cdb10(0x28, 0, 2), kBs);
  EXPECT_EQ(half.data_in.size(), kBs);
  EXPECT_EQ(half.scsi_length, 2 * kBs);
}

TEST_F(ScsiIoTest, WriteResidualsWriteOnlyWholeBlocksOfWhatWasSent) {
  const auto old = Pattern(2, 0x40);
  WriteBlocks(10, old);
  // 2 blocks asked, 1 block sent: only block 0 written.
  ScsiResult short_write = RunOut(*lu, n, Cdb10(0x2A, 10, 2), Pattern(1, 0x77));
  EXPECT_EQ(short_write.status, status::kGood);
  EXPECT_EQ(short_write.scsi_length, 2 * kBs);
  auto now = ReadBlocks(10, 2);
  EXPECT_TRUE(std::equal(now.begin(), now.begin() + kBs, Pattern(1, 0x77).begin()));
  EXPECT_TRUE(std::equal(now.begin() + kBs, now.end(), old.begin() + kBs));

  // 1 block asked, 2 sent: block 1 untouched.
  WriteBlocks(10, old);
  ScsiResult long_write = RunOut(*lu, n, Cdb10(0x2A, 10, 1), Pattern(2, 0x99));
  EXPECT_EQ(long_write.status, status::kGood);
  EXPECT_EQ(long_write.scsi_length, kBs);
  now = ReadBlocks(10, 2);
  EXPECT_TRUE(std::equal(now.begin(), now.begin() + kBs, Pattern(1, 0x99).begin()));
  EXPECT_TRUE(std::equal(now.begin() + kBs, now.end(), old.begin() + kBs));

  // Less than a block: nothing written, still GOOD; no data at all: GOOD.
  WriteBlocks(10, old);
  auto partial = Pattern(1, 0x11);
  partial.resize(200);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x2A, 10, 1), partial).status, status::kGood);
  EXPECT_EQ(ReadBlocks(10, 2), old);
  ScsiResult empty = RunOut(*lu, n, Cdb10(0x2A, 10, 1), {});
  EXPECT_EQ(empty.status, status::kGood);
  EXPECT_EQ(empty.scsi_length, kBs);
}

TEST_F(ScsiIoTest, ProtectionFieldsAreRejectedAndDpoFuaAccepted) {
  for (uint8_t protect = 1; protect < 8; ++protect) {
    const uint8_t flags = static_cast<uint8_t>(protect << 5);
    EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb10(0x28, 0, 1, flags), kBs)), 0x052400u);
    EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb16(0x8A, 0, 1, flags), Pattern(1, 0))), 0x052400u);
    EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb12(0xAF, 0, 1, flags), 0)), 0x052400u);
  }
  EXPECT_EQ(RunIn(*lu, n, Cdb10(0x28, 0, 1, 0x18), kBs).status, status::kGood);
  EXPECT_EQ(RunOut(*lu, n, Cdb12(0xAA, 0, 1, 0x18), Pattern(1, 0)).status, status::kGood);
  // Reserved bits (READ(10) byte 1 bit 0) are an invalid field with a field pointer.
  ScsiResult reserved = RunIn(*lu, n, Cdb10(0x28, 0, 1, 0x01), kBs);
  EXPECT_EQ(SenseOf(reserved), 0x052400u);
  EXPECT_EQ(reserved.sense[15], 0x80 | 0x40 | 0x08 | 0);
  EXPECT_EQ(GetBe16(reserved.sense, 16), 1);
}

TEST_F(ScsiIoTest, TransferLimit) {
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb16(0x88, 0, 8193), 8193 * kBs)), 0x052400u);
  EXPECT_EQ(RunIn(*lu, n, Cdb16(0x88, 0, 8192), 8192 * kBs).status, status::kGood);
}

TEST_F(ScsiIoTest, VerifyComparesWithByteCheck) {
  auto data = Pattern(3, 0x21);
  WriteBlocks(50, data);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x2F, 50, 3, 0x02), data).status, status::kGood);
  auto flipped = data;
  flipped[kBs + 17] ^= 0xFF;
  ScsiResult bad = RunOut(*lu, n, Cdb16(0x8F, 50, 3, 0x02), flipped);
  EXPECT_EQ(SenseOf(bad), 0x0E1D00u);
  EXPECT_EQ(bad.sense[0] & 0x80, 0x80);
  EXPECT_EQ(GetBe32(bad.sense, 3), kBs + 17);
  ScsiResult no_bytchk = RunIn(*lu, n, Cdb12(0xAF, 50, 3), 0);
  EXPECT_EQ(no_bytchk.status, status::kGood);
  EXPECT_EQ(no_bytchk.scsi_length, 0u);
}

TEST_F(ScsiIoTest, WriteAndVerify) {
  auto data = Pattern(2, 0x33);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x2E, 7, 0, 0x02), {}).status, status::kGood);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x2E, 7, 2, 0x02), data).status, status::kGood);
  EXPECT_EQ(ReadBlocks(7, 2), data);
  EXPECT_EQ(RunOut(*lu, n, Cdb16(0x8E, 7, 2, 0x10), Pattern(2, 1)).status, status::kGood);
  EXPECT_EQ(ReadBlocks(7, 2), Pattern(2, 1));
}

std::vector<uint8_t> CawCdb(uint64_t lba, uint8_t blocks, uint8_t flags = 0) {
  std::vector<uint8_t> c(16, 0);
  c[0] = 0x89;
  c[1] = flags;
  PutBe64(c, 2, lba);
  c[13] = blocks;
  return c;
}

TEST_F(ScsiIoTest, CompareAndWrite) {
  auto a = Pattern(2, 0xA0), b = Pattern(2, 0xB0);
  WriteBlocks(kBlocks - 2, a);
  auto ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  EXPECT_EQ(RunOut(*lu, n, CawCdb(kBlocks - 2, 2, 0x18), ab).status, status::kGood);
  EXPECT_EQ(ReadBlocks(kBlocks - 2, 2), b);

  auto wrong = ab;  // compare half no longer matches (medium is b now): first byte differs
  wrong[kBs + 5] ^= 1;
  ScsiResult miss = RunOut(*lu, n, CawCdb(kBlocks - 2, 2), wrong);
  EXPECT_EQ(SenseOf(miss), 0x0E1D00u);
  EXPECT_EQ(GetBe32(miss.sense, 3), 0u);
  EXPECT_EQ(ReadBlocks(kBlocks - 2, 2), b);

  auto ba = b;
  ba.insert(ba.end(), a.begin(), a.end());
  ba[kBs + 5] ^= 1;  // one byte off in the second compare block
  miss = RunOut(*lu, n, CawCdb(kBlocks - 2, 2), ba);
  EXPECT_EQ(SenseOf(miss), 0x0E1D00u);
  EXPECT_EQ(GetBe32(miss.sense, 3), kBs + 5);
  EXPECT_EQ(ReadBlocks(kBlocks - 2, 2), b);

  // EDTL must be exactly 2·NLB blocks; NLB 0 with data (= 256 meant) is invalid.
  EXPECT_EQ(SenseOf(RunOut(*lu, n, CawCdb(0, 2), Pattern(2, 0))), 0x052400u);
  EXPECT_EQ(SenseOf(RunOut(*lu, n, CawCdb(0, 0), Pattern(512, 0))), 0x052400u);
  EXPECT_EQ(RunOut(*lu, n, CawCdb(0, 0), {}).status, status::kGood);
  EXPECT_EQ(SenseOf(RunOut(*lu, n, CawCdb(kBlocks - 1, 2), Pattern(4, 0))), 0x052100u);
}

TEST_F(ScsiIoTest, WriteSame) {
  auto block = Pattern(1, 0x5A);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x41, 100, 16), block).status, status::kGood);
  auto all = ReadBlocks(100, 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_TRUE(std::equal(block.begin(), block.end(), all.begin() + i * kBs)) << i;
  }
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb10(0x41, 0, 0), block)), 0x052400u);     // WSNZ
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb16(0x93, 0, 8193), block)), 0x052400u);  // > MAX WS
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb16(0x93, 0, 65536, 0x08), block)), 0x052400u);
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb10(0x41, 0, 1, 0x10), block)), 0x052400u);  // ANCHOR
  EXPECT_EQ(SenseOf(RunOut(*lu, n, Cdb10(0x41, kBlocks, 1), block)), 0x052100u);
  // UNMAP with a zero block deallocates; with data it writes.
  WriteBlocks(0, Pattern(8192, 3));
  ASSERT_EQ(store->allocated_chunks(), 1u);
  std::vector<uint8_t> zero(kBs, 0);
  EXPECT_EQ(RunOut(*lu, n, Cdb16(0x93, 0, 8192, 0x08), zero).status, status::kGood);
  EXPECT_EQ(store->allocated_chunks(), 0u);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x41, 0, 4, 0x08), block).status, status::kGood);
  EXPECT_TRUE(std::equal(block.begin(), block.end(), ReadBlocks(3, 1).begin()));
  // NDOB: no data-out, zeros.
  ScsiResult ndob = RunOut(*lu, n, Cdb16(0x93, 0, 4, 0x09), {});
  EXPECT_EQ(ndob.status, status::kGood);
  EXPECT_EQ(ndob.scsi_length, 0u);
  EXPECT_EQ(ReadBlocks(0, 4), std::vector<uint8_t>(4 * kBs, 0));
}

std::vector<uint8_t> UnmapList(const std::vector<std::pair<uint64_t, uint32_t>>& ranges) {
  std::vector<uint8_t> d(8, 0);
  for (auto [lba, blocks] : ranges) {
    AppendBe(d, 8, lba);
    AppendBe(d, 4, blocks);
    AppendBe(d, 4, 0);
  }
  PutBe16(d, 0, d.size() - 2);
  PutBe16(d, 2, d.size() - 8);
  return d;
}

std::vector<uint8_t> UnmapCdb(size_t param_length) {
  std::vector<uint8_t> c(10, 0);
  c[0] = 0x42;
  PutBe16(c, 7, param_length);
  return c;
}

std::vector<uint8_t> GetLbaStatusCdb(uint64_t lba, uint32_t alloc) {
  auto c = Cdb16(0x9E, lba, alloc, 0x12);
  return c;
}

TEST_F(ScsiIoTest, UnmapAndLbaStatus) {
  const uint64_t chunk_blocks = MemStore::kChunkBytes / kBs;
  WriteBlocks(0, Pattern(1, 1));
  WriteBlocks(2 * chunk_blocks, Pattern(1, 1));
  ScsiResult st = RunIn(*lu, n, GetLbaStatusCdb(1, 1024), 1024);
  ASSERT_EQ(st.status, status::kGood);
  ASSERT_GE(st.data_in.size(), 8u + 3 * 16);
  EXPECT_EQ(GetBe32(st.data_in, 0) + 4u, st.data_in.size());
  EXPECT_EQ(GetBe64(st.data_in, 8), 1u);  // first descriptor at the requested LBA
  EXPECT_EQ(GetBe32(st.data_in, 16), chunk_blocks - 1);
  EXPECT_EQ(st.data_in[20] & 0xF, 0);  // mapped
  EXPECT_EQ(GetBe64(st.data_in, 24), chunk_blocks);
  EXPECT_EQ(st.data_in[36] & 0xF, 1);  // deallocated
  EXPECT_EQ(GetBe64(st.data_in, 40), 2 * chunk_blocks);

  // Unmapping one block inside a mapped chunk: the next block still reports mapped and reads
  // as zeros after the unmapped one.
  auto list = UnmapList({{2 * chunk_blocks, 1}});
  EXPECT_EQ(RunOut(*lu, n, UnmapCdb(list.size()), list).status, status::kGood);
  EXPECT_EQ(ReadBlocks(2 * chunk_blocks, 1), std::vector<uint8_t>(kBs, 0));
  st = RunIn(*lu, n, GetLbaStatusCdb(2 * chunk_blocks + 1, 24), 24);
  ASSERT_EQ(st.data_in.size(), 24u);
  EXPECT_EQ(GetBe64(st.data_in, 8), 2 * chunk_blocks + 1);
  EXPECT_EQ(st.data_in[20] & 0xF, 0);

  // Whole chunk: deallocated.
  list = UnmapList({{0, static_cast<uint32_t>(chunk_blocks)}, {5, 0}, {0, 3}});
  EXPECT_EQ(RunOut(*lu, n, UnmapCdb(list.size()), list).status, status::kGood);
  st = RunIn(*lu, n, GetLbaStatusCdb(0, 24), 24);
  EXPECT_EQ(st.data_in[20] & 0xF, 1);

  EXPECT_EQ(SenseOf(RunIn(*lu, n, GetLbaStatusCdb(kBlocks, 24), 24)), 0x052100u);
  EXPECT_EQ(SenseOf(RunIn(*lu, n, GetLbaStatusCdb(~uint64_t{0}, 24), 24)), 0x052100u);
  list = UnmapList({{kBlocks, 0}});
  EXPECT_EQ(RunOut(*lu, n, UnmapCdb(list.size()), list).status, status::kGood);
  list = UnmapList({{kBlocks - 1, 2}});
  EXPECT_EQ(SenseOf(RunOut(*lu, n, UnmapCdb(list.size()), list)), 0x052100u);
  EXPECT_EQ(RunOut(*lu, n, UnmapCdb(0), {}).status, status::kGood);
  EXPECT_EQ(RunOut(*lu, n, UnmapCdb(8), UnmapList({})).status, status::kGood);
}

TEST_F(ScsiIoTest, BackendErrorsMapToSense) {
  // Failures that last (the non-blocking path's attempt, then the worker's) are reported.
  const auto failing = [&](IoStatus st, auto run) {
    store->InjectFailures(2, st);
    const uint32_t sense = SenseOf(run());
    store->InjectFailures(0, IoStatus::kOk);
    return sense;
  };
  EXPECT_EQ(failing(IoStatus::kError, [&] { return RunIn(*lu, n, Cdb10(0x28, 0, 1), kBs); }),
            0x031100u);
  EXPECT_EQ(
      failing(IoStatus::kError, [&] { return RunOut(*lu, n, Cdb10(0x2A, 0, 1), Pattern(1, 0)); }),
      0x030C00u);
  EXPECT_EQ(
      failing(IoStatus::kNoSpace, [&] { return RunOut(*lu, n, Cdb10(0x2A, 0, 1), Pattern(1, 0)); }),
      0x072707u);
  store->InjectFailures(1, IoStatus::kError);
  EXPECT_EQ(SenseOf(RunNoData(*lu, n, Cdb10(0x35, 0, 0))), 0x030C00u);
  EXPECT_EQ(RunNoData(*lu, n, Cdb10(0x35, 0, 0)).status, status::kGood);
  EXPECT_EQ(RunNoData(*lu, n, Cdb16(0x90, kBlocks - 1, 1)).status, status::kGood);
  EXPECT_EQ(SenseOf(RunNoData(*lu, n, Cdb16(0x91, kBlocks, 1))), 0x052100u);
}

// Plain READs and WRITEs start on the non-blocking path once the shared state is cached; a
// command with a unit attention to report, or one a reservation refuses, does not.
TEST_F(ScsiIoTest, NonBlockingPathTakesOnlyPlainReadsAndWrites) {
  WriteBlocks(0, Pattern(4, 1));
  uint64_t started = store->started_calls();
  WriteBlocks(8, Pattern(2, 2));
  EXPECT_EQ(ReadBlocks(8, 2), Pattern(2, 2));
  EXPECT_EQ(RunIn(*lu, n, Cdb10(0x28, 0, 4), 4 * kBs).data_in, Pattern(4, 1));
  EXPECT_EQ(store->started_calls(), started + 3);

  // A login queues POWER ON OCCURRED for the nexus: reported by a worker, not started.
  lu->NexusLogin(n);
  started = store->started_calls();
  EXPECT_EQ(SenseOf(RunIn(*lu, n, Cdb10(0x28, 0, 1), kBs)), 0x062900u);
  EXPECT_EQ(store->started_calls(), started);
  EXPECT_EQ(ReadBlocks(0, 1), Pattern(1, 1));
  EXPECT_EQ(store->started_calls(), started + 1);

  // Another nexus holds RESERVE(6): this one's READ conflicts (a worker decides it on fresh
  // state), without starting any I/O.
  const Nexus other = MakeNexus("iqn.test:other");
  DrainUnitAttentions(*lu, other);
  ASSERT_EQ(RunNoData(*lu, other, {0x16, 0, 0, 0, 0, 0}).status, status::kGood);
  started = store->started_calls();
  EXPECT_EQ(RunIn(*lu, n, Cdb10(0x28, 0, 1), kBs).status, status::kReservationConflict);
  EXPECT_EQ(store->started_calls(), started);
}

// A READ or WRITE whose non-blocking I/O fails once is redone by a worker (which retries,
// reloads or reports): one failure is not the command's.
TEST_F(ScsiIoTest, NonBlockingFailureIsRetriedByAWorker) {
  WriteBlocks(0, Pattern(1, 3));  // warms the shared-state cache: the next commands start fast
  store->InjectFailures(1, IoStatus::kError);
  EXPECT_EQ(RunOut(*lu, n, Cdb10(0x2A, 1, 1), Pattern(1, 9)).status, status::kGood);
  store->InjectFailures(1, IoStatus::kError);
  EXPECT_EQ(ReadBlocks(1, 1), Pattern(1, 9));
  EXPECT_EQ(ReadBlocks(0, 1), Pattern(1, 3));
}

}  // namespace
}  // namespace kelpie::scsi::testing
