// The ObjectStore's block checksums: a flipped byte is caught on read and on a partial write, a
// store from before checksums is adopted, a rotten stale copy is not handed out, --capacity
// refuses writes but keeps reads, and a write torn at any byte by a crash never reads back as
// anything but the old or the new bytes (or a checksum error for the cluster to repair).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "proto/constants.h"
#include "store/object_store.h"
#include "temp_dir.h"

namespace kelpie::store {
namespace {

namespace fs = std::filesystem;
namespace res = proto::res;

constexpr uint64_t kOid = 0x00abcdef00000002;

class ChecksumTest : public TempDirTest {
 protected:
  fs::path DataFile() const { return dir_ / "obj" / "00abcdef00000002"; }
  fs::path CrcFile() const { return dir_ / "obj" / "00abcdef00000002.crc"; }
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7 + (i >> 8));
  return v;
}

std::vector<uint8_t> Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void Spit(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// Overwrites the file's bytes in place (no truncation: a crash does not shorten the files).
void Overwrite(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void FlipByte(const fs::path& p, size_t at) {
  std::vector<uint8_t> bytes = Slurp(p);
  ASSERT_LT(at, bytes.size());
  bytes[at] ^= 0x40;
  Spit(p, bytes);
}

// A hot object's checksums are read once and kept in memory (the handle cache): writes must
// keep that copy and the sidecar in step, and rot in the data is still caught.
TEST_F(ChecksumTest, CachedChecksumsFollowWritesAndStillCatchRot) {
  auto image = Pattern(16384, 3);
  {
    ObjectStore s(dir_);
    ASSERT_EQ(s.CreateAndWrite(kOid, 16384, 0, image), res::kSuccess);
    std::vector<uint8_t> all(16384);
    ASSERT_EQ(s.Read(kOid, 0, all), res::kSuccess);  // loads the table
    const auto part = Pattern(10, 4), whole = Pattern(4096, 5);
    ASSERT_EQ(s.Write(kOid, 4100, part), res::kSuccess);   // an edge block
    ASSERT_EQ(s.Write(kOid, 8192, whole), res::kSuccess);  // a whole block
    std::copy(part.begin(), part.end(), image.begin() + 4100);
    std::copy(whole.begin(), whole.end(), image.begin() + 8192);
    ASSERT_EQ(s.Read(kOid, 0, all), res::kSuccess);
    EXPECT_EQ(all, image);
    FlipByte(DataFile(), 9000);
    std::vector<uint8_t> out(10);
    EXPECT_EQ(s.Read(kOid, 8995, out), res::kChecksumError);
    EXPECT_EQ(s.Read(kOid, 4100, out), res::kSuccess);
    FlipByte(DataFile(), 9000);  // back as it was
  }
  ObjectStore fresh(dir_);  // the sidecar on disk agrees with what the cache held
  std::vector<uint8_t> all(16384);
  ASSERT_EQ(fresh.Read(kOid, 0, all), res::kSuccess);
  EXPECT_EQ(all, image);
}

TEST_F(ChecksumTest, FlippedByteIsCaughtNotServed) {
  ObjectStore s(dir_);
  const auto image = Pattern(16384, 1);
  ASSERT_EQ(s.CreateAndWrite(kOid, 16384, 0, image), res::kSuccess);
  ASSERT_TRUE(fs::exists(CrcFile()));
  FlipByte(DataFile(), 5000);  // block 1

  std::vector<uint8_t> out(100);
  EXPECT_EQ(s.Read(kOid, 4990, out), res::kChecksumError);
  EXPECT_EQ(s.Read(kOid, 0, std::span(out.data(), 10)), res::kSuccess);  // block 0 is fine
  EXPECT_EQ(s.Read(kOid, 8192, out), res::kSuccess);                     // so is block 2
  // A partial write into the rotten block must not bless it with fresh checksums.
  EXPECT_EQ(s.Write(kOid, 4100, Pattern(10, 9)), res::kChecksumError);
  EXPECT_EQ(s.Read(kOid, 4096, out), res::kChecksumError);
  // Rewriting the whole copy (what the gateway's repair does) heals it.
  ASSERT_EQ(s.CreateAndWrite(kOid, 16384, 0, image), res::kSuccess);
  std::vector<uint8_t> all(16384);
  ASSERT_EQ(s.Read(kOid, 0, all), res::kSuccess);
  EXPECT_EQ(all, image);
}

TEST_F(ChecksumTest, WritesKeepChecksumsCurrent) {
  ObjectStore s(dir_);
  auto image = Pattern(3 * 4096 + 100, 3);  // a short last block
  ASSERT_EQ(s.CreateAndWrite(kOid, image.size(), 0, image), res::kSuccess);
  const auto patch = Pattern(5000, 77);
  ASSERT_EQ(s.Write(kOid, 4000, patch), res::kSuccess);             // spans three blocks
  ASSERT_EQ(s.Write(kOid, 12288, Pattern(100, 5)), res::kSuccess);  // the short last block
  std::copy(patch.begin(), patch.end(), image.begin() + 4000);
  const auto tail = Pattern(100, 5);
  std::copy(tail.begin(), tail.end(), image.begin() + 12288);
  ObjectStore reopened(dir_);
  std::vector<uint8_t> all(image.size());
  ASSERT_EQ(reopened.Read(kOid, 0, all), res::kSuccess);
  EXPECT_EQ(all, image);
  EXPECT_EQ(reopened.Write(kOid, image.size() - 1, Pattern(2, 0)), res::kInvalidParms);
}

TEST_F(ChecksumTest, ObjectFromBeforeChecksumsIsAdopted) {
  {
    ObjectStore s(dir_);
    ASSERT_EQ(s.CreateAndWrite(kOid, 8192, 0, Pattern(8192, 4)), res::kSuccess);
  }
  fs::remove(CrcFile());
  ObjectStore s(dir_);
  std::vector<uint8_t> out(8192);
  ASSERT_EQ(s.Read(kOid, 0, out), res::kSuccess);
  EXPECT_EQ(out, Pattern(8192, 4));
  EXPECT_TRUE(fs::exists(CrcFile()));
  FlipByte(DataFile(), 10);
  EXPECT_EQ(s.Read(kOid, 0, out), res::kChecksumError);
}

TEST_F(ChecksumTest, RottenStaleCopyIsNotHandedOut) {
  ObjectStore s(dir_);
  ASSERT_EQ(s.CreateAndWrite(kOid, 8192, 0, Pattern(8192, 6)), res::kSuccess);
  s.MoveToStale(kOid, 3);
  EXPECT_FALSE(fs::exists(CrcFile()));
  ASSERT_TRUE(s.ReadStale(kOid).has_value());
  FlipByte(dir_ / "obj" / ".stale" / "00abcdef00000002.3", 8000);
  EXPECT_FALSE(s.ReadStale(kOid).has_value());
  EXPECT_EQ(s.ListStale(), std::vector<uint64_t>{kOid});
  s.DropStale(kOid);
  EXPECT_TRUE(fs::is_empty(dir_ / "obj" / ".stale"));
}

TEST_F(ChecksumTest, CapacityRefusesWritesKeepsReads) {
  ObjectStore s(dir_, 64 * 1024);
  EXPECT_EQ(s.CapacityBytes(), 64u * 1024);
  uint64_t oid = 1;
  uint32_t rc = res::kSuccess;
  for (; oid < 100 && rc == res::kSuccess; ++oid)
    rc = s.CreateAndWrite(oid, 1 << 20, 0, Pattern(16384, uint8_t(oid)));
  ASSERT_EQ(rc, res::kNoSpace);
  ASSERT_GT(oid, 2u);
  EXPECT_FALSE(s.Exists(oid - 1));
  EXPECT_EQ(s.Write(1, 0, Pattern(65536, 0)), res::kNoSpace);
  for (uint64_t o = 1; o < oid - 1; ++o) {
    std::vector<uint8_t> out(16384);
    ASSERT_EQ(s.Read(o, 0, out), res::kSuccess);
    EXPECT_EQ(out, Pattern(16384, uint8_t(o)));
  }
  // Removing an object makes room again.
  ASSERT_EQ(s.Remove(1), res::kSuccess);
  EXPECT_EQ(s.CreateAndWrite(oid - 1, 1 << 20, 0, Pattern(16384, 1)), res::kSuccess);
}

// A power loss during Write can leave any prefix of the new data on disk, and any prefix of the
// block's new 4-byte checksum entry in the sidecar (a crash before, during or after each). For
// every such tear the reopened store reads the block as its old bytes, its new bytes, or a
// checksum error (repaired from another copy by the cluster) — never as a mix — and the other
// block is untouched.
TEST_F(ChecksumTest, WriteTornAtEveryByteNeverReadsAsGarbage) {
  const auto before = Pattern(8192, 11);
  const auto patch = Pattern(4096, 99);
  std::vector<uint8_t> old_data, old_crc, new_crc;
  {
    ObjectStore s(dir_);
    ASSERT_EQ(s.CreateAndWrite(kOid, before.size(), 0, before), res::kSuccess);
    old_data = Slurp(DataFile());
    old_crc = Slurp(CrcFile());
    ASSERT_EQ(s.Write(kOid, 4096, patch), res::kSuccess);
    new_crc = Slurp(CrcFile());
  }
  ASSERT_EQ(old_crc.size(), 8u);
  const std::vector<uint8_t> old_block(before.begin() + 4096, before.end());
  size_t as_old = 0, as_new = 0, caught = 0;
  // Each torn state is read as after a crash: the store forgets its open files and the
  // checksums it read (and is reopened now and then). Its expected checksum errors are not
  // logged.
  std::unique_ptr<ObjectStore> store;
  auto reopen_every_64 = [&](size_t i) -> ObjectStore& {
    if (i % 64 == 0) store = std::make_unique<ObjectStore>(dir_);
    store->ForgetHandles();
    return *store;
  };
  spdlog::set_level(spdlog::level::off);
  for (size_t torn = 0; torn <= patch.size(); ++torn) {
    for (size_t crc_torn = 0; crc_torn <= 4; ++crc_torn) {
      std::vector<uint8_t> data = old_data;
      std::copy(patch.begin(), patch.begin() + long(torn), data.begin() + 4096);
      std::vector<uint8_t> crc = old_crc;
      std::copy(new_crc.begin() + 4, new_crc.begin() + 4 + long(crc_torn), crc.begin() + 4);
      Overwrite(DataFile(), data);
      Overwrite(CrcFile(), crc);
      ObjectStore& s = reopen_every_64(torn * 5 + crc_torn);
      std::vector<uint8_t> out(4096);
      const uint32_t rc = s.Read(kOid, 4096, out);
      if (rc == res::kChecksumError) {
        ++caught;
      } else {
        ASSERT_EQ(rc, res::kSuccess) << "torn at " << torn << "/" << crc_torn;
        ASSERT_TRUE(out == old_block || out == patch)
            << "garbage served, torn at " << torn << "/" << crc_torn;
        ++(out == patch ? as_new : as_old);
      }
      ASSERT_EQ(s.Read(kOid, 0, out), res::kSuccess);
      ASSERT_TRUE(std::equal(out.begin(), out.end(), before.begin()));
    }
  }
  spdlog::set_level(spdlog::level::info);
  EXPECT_EQ(as_old, 1u);  // nothing of the write landed
  EXPECT_EQ(as_new, 1u);  // all of it landed
  EXPECT_EQ(caught, 4097u * 5 - 2);
}

}  // namespace
}  // namespace kelpie::store
