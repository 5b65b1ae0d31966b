// The verifier of the fault tests must be able to fail: each verdict of WriteHistory::Check, and
// the journal surviving a save and load.
#include "write_history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace kelpie::fault {
namespace {

constexpr size_t kSize = 4096;

TEST(WriteHistory, DataIsDeterministicAndDistinct) {
  EXPECT_EQ(BlockData(7, 3, 1, kSize), BlockData(7, 3, 1, kSize));
  EXPECT_NE(BlockData(7, 3, 1, kSize), BlockData(7, 3, 2, kSize));
  EXPECT_NE(BlockData(7, 3, 1, kSize), BlockData(7, 4, 1, kSize));
  EXPECT_NE(BlockData(7, 3, 1, kSize), BlockData(8, 3, 1, kSize));
}

TEST(WriteHistory, VerdictsFollowTheContract) {
  WriteHistory h(42, kSize);
  std::string what;
  const uint64_t s1 = h.NextSeq(5);
  h.Acknowledged(5, s1);
  const uint64_t s2 = h.NextSeq(5);
  h.Failed(5, s2);  // may or may not have landed
  EXPECT_EQ(h.Check(5, BlockData(42, 5, s1, kSize), &what), Verdict::kOk) << what;
  EXPECT_EQ(h.Check(5, BlockData(42, 5, s2, kSize), &what), Verdict::kOk) << what;
  // Zeros are an older version than acknowledged write 1: a loss.
  EXPECT_EQ(h.Check(5, std::vector<uint8_t>(kSize), &what), Verdict::kLost) << what;
  std::vector<uint8_t> rotten = BlockData(42, 5, s1, kSize);
  rotten[100] ^= 1;
  EXPECT_EQ(h.Check(5, rotten, &what), Verdict::kGarbage) << what;

  // A later acknowledged write makes both earlier ones losses.
  const uint64_t s3 = h.NextSeq(5);
  h.Acknowledged(5, s3);
  EXPECT_EQ(h.Check(5, BlockData(42, 5, s3, kSize), &what), Verdict::kOk) << what;
  EXPECT_EQ(h.Check(5, BlockData(42, 5, s2, kSize), &what), Verdict::kLost) << what;
  EXPECT_EQ(h.Check(5, BlockData(42, 5, s1, kSize), &what), Verdict::kLost) << what;

  // Never acknowledged: zeros or the failed write.
  h.Failed(9, h.NextSeq(9));
  EXPECT_EQ(h.Check(9, std::vector<uint8_t>(kSize), &what), Verdict::kOk) << what;
  EXPECT_EQ(h.Check(9, BlockData(42, 9, 1, kSize), &what), Verdict::kOk) << what;
  EXPECT_EQ(h.Check(9, BlockData(42, 5, s3, kSize), &what), Verdict::kGarbage) << what;
}

TEST(WriteHistory, JournalRoundTrip) {
  WriteHistory h(99, kSize);
  h.Acknowledged(1, h.NextSeq(1));
  h.Failed(1, h.NextSeq(1));
  h.Failed(1, h.NextSeq(1));
  h.Acknowledged(2, h.NextSeq(2));
  const std::string path = ::testing::TempDir() + "write_history_" + std::to_string(getpid());
  h.Save(path);
  const auto back = WriteHistory::Load(path);
  std::remove(path.c_str());
  EXPECT_EQ(back->seed(), 99u);
  EXPECT_EQ(back->block_size(), kSize);
  ASSERT_EQ(back->blocks().size(), 2u);
  EXPECT_EQ(back->blocks().at(1).acked, 1u);
  EXPECT_EQ(back->blocks().at(1).unacked, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(back->blocks().at(2).acked, 1u);
  std::string what;
  EXPECT_EQ(back->Check(1, BlockData(99, 1, 3, kSize), &what), Verdict::kOk) << what;
  EXPECT_EQ(back->Check(1, std::vector<uint8_t>(kSize), &what), Verdict::kLost) << what;
}

}  // namespace
}  // namespace kelpie::fault
