// ObjectStore and MetaStore on a temporary directory: reads past the end are zeros, writes need an
// existing object, create-and-write replaces atomically, stale copies are kept apart, and a
// reopened store finds its objects.
#include "store/object_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>

#include "proto/constants.h"
#include "proto/oid.h"
#include "store/group_commit.h"
#include "temp_dir.h"

namespace kelpie::store {
namespace {

namespace fs = std::filesystem;
namespace res = proto::res;

using StoreTest = TempDirTest;

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

TEST_F(StoreTest, CreateReadWrite) {
  ObjectStore s(dir_);
  const uint64_t oid = 0x007c2b2500000003;
  EXPECT_FALSE(s.Exists(oid));
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(s.Read(oid, 0, buf), res::kNoObj);
  EXPECT_EQ(s.Write(oid, 0, Bytes(4, 1)), res::kNoObj);

  ASSERT_EQ(s.CreateAndWrite(oid, 1 << 22, 4096, Bytes(8192, 0xAB)), res::kSuccess);
  EXPECT_TRUE(s.Exists(oid));
  EXPECT_EQ(s.Size(oid), std::optional<uint64_t>(1 << 22));
  std::vector<uint8_t> out(12288);
  ASSERT_EQ(s.Read(oid, 0, out), res::kSuccess);
  EXPECT_TRUE(std::all_of(out.begin(), out.begin() + 4096, [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::all_of(out.begin() + 4096, out.end(), [](uint8_t b) { return b == 0xAB; }));

  ASSERT_EQ(s.Write(oid, 6000, Bytes(100, 0x11)), res::kSuccess);
  std::vector<uint8_t> part(102);
  ASSERT_EQ(s.Read(oid, 5999, part), res::kSuccess);
  EXPECT_EQ(part.front(), 0xAB);
  EXPECT_EQ(part[1], 0x11);
  EXPECT_EQ(part[100], 0x11);
  EXPECT_EQ(part.back(), 0xAB);

  // Create-and-write replaces the whole object.
  ASSERT_EQ(s.CreateAndWrite(oid, 1 << 22, 0, Bytes(10, 0x22)), res::kSuccess);
  ASSERT_EQ(s.Read(oid, 4096, part), res::kSuccess);
  EXPECT_EQ(part, Bytes(102, 0));
  EXPECT_EQ(s.List(), std::vector<uint64_t>{oid});
  EXPECT_EQ(s.Remove(oid), res::kSuccess);
  EXPECT_EQ(s.Remove(oid), res::kNoObj);
  EXPECT_TRUE(s.List().empty());
}

TEST_F(StoreTest, ReadPastEndIsZeros) {
  ObjectStore s(dir_);
  ASSERT_EQ(s.CreateAndWrite(1, 100, 0, Bytes(100, 7)), res::kSuccess);
  std::vector<uint8_t> out(200, 0xFF);
  ASSERT_EQ(s.Read(1, 50, out), res::kSuccess);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 50), Bytes(50, 7));
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + 50, out.end()), Bytes(150, 0));
}

TEST_F(StoreTest, StaleCopiesAreKeptApart) {
  ObjectStore s(dir_);
  ASSERT_EQ(s.CreateAndWrite(9, 64, 0, Bytes(64, 1)), res::kSuccess);
  s.MoveToStale(9, 4);
  EXPECT_FALSE(s.Exists(9));
  EXPECT_TRUE(s.List().empty());
  EXPECT_EQ(s.ListStale(), std::vector<uint64_t>{9});
  // A newer stale copy wins.
  ASSERT_EQ(s.CreateAndWrite(9, 64, 0, Bytes(64, 2)), res::kSuccess);
  s.MoveToStale(9, 7);
  auto stale = s.ReadStale(9);
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(stale->epoch, 7u);
  EXPECT_EQ(stale->data, Bytes(64, 2));
  s.DropStale(9);
  EXPECT_FALSE(s.ReadStale(9).has_value());
  EXPECT_TRUE(s.ListStale().empty());
  s.MoveToStale(12345, 1);  // absent: no-op
  EXPECT_TRUE(s.ListStale().empty());
}

TEST_F(StoreTest, ReopenedStoreFindsItsObjects) {
  {
    ObjectStore s(dir_);
    for (uint64_t oid = 1; oid <= 5; ++oid) {
      ASSERT_EQ(s.CreateAndWrite(oid, 32, 0, Bytes(32, uint8_t(oid))), res::kSuccess);
    }
  }
  // A leftover temporary file from a crash mid-create is not an object.
  {
    std::FILE* f = std::fopen((dir_ / "obj" / ".tmp.0000000000000006.0").c_str(), "w");
    std::fclose(f);
  }
  ObjectStore s(dir_);
  auto list = s.List();
  std::sort(list.begin(), list.end());
  EXPECT_EQ(list, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  std::vector<uint8_t> out(32);
  ASSERT_EQ(s.Read(4, 0, out), res::kSuccess);
  EXPECT_EQ(out, Bytes(32, 4));
}

TEST_F(StoreTest, MetaStoreReplacesRecords) {
  MetaStore m(dir_);
  EXPECT_FALSE(m.Get("config").has_value());
  ASSERT_TRUE(m.Put("config", std::string("one")));
  ASSERT_TRUE(m.Put("config", std::string("two")));
  EXPECT_EQ(m.Get("config"), std::optional<std::string>("two"));
  MetaStore again(dir_);
  EXPECT_EQ(again.Get("config"), std::optional<std::string>("two"));
  EXPECT_TRUE(again.Remove("config"));
  EXPECT_FALSE(again.Get("config").has_value());
}

TEST_F(StoreTest, WriteBackIsFlushedPerVdi) {
  ObjectStore s(dir_);
  const uint64_t a = proto::VidToDataOid(0x10, 1), b = proto::VidToDataOid(0x20, 1);
  for (uint64_t oid : {a, b}) ASSERT_EQ(s.CreateAndWrite(oid, 1 << 20, 0, {}), res::kSuccess);
  EXPECT_EQ(s.WriteBack(a, 4096, Bytes(4096, 7)), res::kSuccess);
  EXPECT_EQ(s.WriteBack(b, 100, Bytes(10, 8)), res::kSuccess);
  EXPECT_EQ(s.WriteBack(proto::VidToDataOid(0x30, 1), 0, Bytes(1, 1)), res::kNoObj);
  EXPECT_EQ(s.DirtyCount(), 2u);
  std::vector<uint8_t> out(4096);
  ASSERT_EQ(s.Read(a, 4096, out), res::kSuccess);  // readable (and checksummed) before a flush
  EXPECT_EQ(out, Bytes(4096, 7));

  const uint64_t batches = s.group_commit().batches();
  std::promise<uint32_t> flushed;
  s.Flush({0x10}, [&](uint32_t rc) { flushed.set_value(rc); });
  EXPECT_EQ(flushed.get_future().get(), res::kSuccess);
  EXPECT_GT(s.group_commit().batches(), batches);
  EXPECT_EQ(s.DirtyCount(), 1u);  // b's VDI was not named

  // A removed object has nothing to flush; an empty list flushes every VDI.
  ASSERT_EQ(s.WriteBack(a, 0, Bytes(1, 9)), res::kSuccess);
  ASSERT_EQ(s.Remove(a), res::kSuccess);
  std::promise<uint32_t> all;
  s.Flush({}, [&](uint32_t rc) { all.set_value(rc); });
  EXPECT_EQ(all.get_future().get(), res::kSuccess);
  EXPECT_EQ(s.DirtyCount(), 0u);
  std::promise<uint32_t> none;
  s.Flush({}, [&](uint32_t rc) { none.set_value(rc); });  // nothing dirty: runs at once
  EXPECT_EQ(none.get_future().get(), res::kSuccess);
}

}  // namespace
}  // namespace kelpie::store
