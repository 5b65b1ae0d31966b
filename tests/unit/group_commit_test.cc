// Group commit in the ObjectStore: writes of many threads to one object and to many objects,
// synced in shared batches, all land with valid checksums; WriteNoWait reports durability once
// per write; a failed sync reaches every writer of its batch.
#include "store/group_commit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "proto/constants.h"
#include "store/object_store.h"
#include "temp_dir.h"

namespace kelpie::store {
namespace {

namespace fs = std::filesystem;
namespace res = proto::res;

using GroupCommitTest = TempDirTest;

TEST_F(GroupCommitTest, ConcurrentWritersAllLand) {
  constexpr int kThreads = 8, kWrites = 16;
  {
    ObjectStore s(dir_);
    ASSERT_EQ(s.CreateAndWrite(1, kThreads * kWrites * 4096, 0, {}), res::kSuccess);
    for (uint64_t oid = 2; oid < 2 + kThreads; ++oid)
      ASSERT_EQ(s.CreateAndWrite(oid, kWrites * 4096, 0, {}), res::kSuccess);
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kWrites; ++i) {
          const std::vector<uint8_t> block(4096, uint8_t(t * kWrites + i));
          // Thread t owns blocks t*kWrites.. of the shared object 1, and all of object 2+t.
          if (s.Write(1, uint64_t(t * kWrites + i) * 4096, block) != res::kSuccess) ++failed;
          if (s.Write(uint64_t(2 + t), uint64_t(i) * 4096, block) != res::kSuccess) ++failed;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(s.group_commit().writes(), uint64_t(2 * kThreads * kWrites));
    EXPECT_LE(s.group_commit().batches(), s.group_commit().writes());
  }
  ObjectStore s(dir_);  // reopened: everything verified against its checksums
  std::vector<uint8_t> out(4096);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kWrites; ++i) {
      const std::vector<uint8_t> want(4096, uint8_t(t * kWrites + i));
      ASSERT_EQ(s.Read(1, uint64_t(t * kWrites + i) * 4096, out), res::kSuccess);
      EXPECT_EQ(out, want);
      ASSERT_EQ(s.Read(uint64_t(2 + t), uint64_t(i) * 4096, out), res::kSuccess);
      EXPECT_EQ(out, want);
    }
  }
}

TEST_F(GroupCommitTest, WriteNoWaitReportsDurableOnce) {
  ObjectStore s(dir_);
  ASSERT_EQ(s.CreateAndWrite(7, 64 * 4096, 0, {}), res::kSuccess);
  std::atomic<int> durable{0}, bad{0};
  for (int i = 0; i < 64; ++i) {
    const std::vector<uint8_t> block(4096, uint8_t(i + 1));
    ASSERT_EQ(s.WriteNoWait(7, uint64_t(i) * 4096, block,
                            [&](uint32_t rc) { ++(rc == res::kSuccess ? durable : bad); }),
              res::kSuccess);
  }
  // A write that fails before the sync never reports.
  EXPECT_EQ(s.WriteNoWait(8, 0, std::vector<uint8_t>(10), [&](uint32_t) { ++bad; }), res::kNoObj);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (durable.load() + bad.load() < 64 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(durable.load(), 64);
  EXPECT_EQ(bad.load(), 0);
  std::vector<uint8_t> out(4096);
  ASSERT_EQ(s.Read(7, 63 * 4096, out), res::kSuccess);
  EXPECT_EQ(out, std::vector<uint8_t>(4096, 64));
}

TEST(GroupCommit, FailedSyncReachesEveryWriter) {
  GroupCommit gc;
  // A descriptor that cannot be synced: the batch fails, and its writer hears it.
  EXPECT_EQ(gc.SubmitAndWait(1, {-1}, nullptr), res::kEio);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  EXPECT_EQ(gc.SubmitAndWait(1, {pipefd[0]}, nullptr), res::kEio);  // EINVAL: not syncable
  ::close(pipefd[0]);
  ::close(pipefd[1]);
}

}  // namespace
}  // namespace kelpie::store
