#include "sheep/vdi_catalog.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "proto/constants.h"
#include "proto/vdi_name.h"
#include "sheep/lock_table.h"

namespace kelpie::sheep {
namespace {

namespace res = proto::res;

NewVdiArgs Args(const std::string& name, uint32_t base = 0, bool snapshot = false,
                const std::string& tag = "") {
  NewVdiArgs a;
  a.name = name;
  a.base_vid = base;
  a.snapshot = snapshot;
  a.tag = tag;
  a.nr_copies = 3;
  a.now = 42;
  return a;
}

TEST(VdiCatalog, CreateTakesTheNameHashAndProbesOnCollision) {
  VdiCatalog c;
  const NewVdiResult r = c.Create(Args("test"));
  ASSERT_EQ(r.result, res::kSuccess);
  EXPECT_EQ(r.vid, 0x7c2b25u);
  EXPECT_EQ(c.Create(Args("test")).result, res::kVdiExist);
  // A snapshot moves the name to the next free vid after the hash.
  const NewVdiResult s = c.Create(Args("test", 0x7c2b25, true, "snap1"));
  ASSERT_EQ(s.result, res::kSuccess);
  EXPECT_EQ(s.vid, 0x7c2b26u);
  EXPECT_EQ(s.snap_id, 2u);
  uint32_t vid = 0;
  EXPECT_EQ(c.Lookup("test", "", 0, &vid), res::kSuccess);
  EXPECT_EQ(vid, 0x7c2b26u);
  EXPECT_EQ(c.Lookup("test", "snap1", 0, &vid), res::kSuccess);
  EXPECT_EQ(vid, 0x7c2b25u);
  EXPECT_EQ(c.Lookup("test", "", 1, &vid), res::kSuccess);
  EXPECT_EQ(vid, 0x7c2b25u);
  EXPECT_EQ(c.Lookup("test", "nope", 0, &vid), res::kNoTag);
  EXPECT_EQ(c.Lookup("other", "", 0, &vid), res::kNoVdi);
  EXPECT_TRUE(c.Find(0x7c2b25)->snapshot);
  EXPECT_EQ(c.Find(0x7c2b26)->parent_vid, 0x7c2b25u);
}

TEST(VdiCatalog, SnapshotOfAStaleVidIsRefused) {
  VdiCatalog c;
  const uint32_t v = c.Create(Args("a")).vid;
  ASSERT_EQ(c.Create(Args("a", v, true, "s1")).result, res::kSuccess);
  EXPECT_EQ(c.Create(Args("a", v, true, "s2")).result, res::kNoBaseVdi);
  EXPECT_EQ(c.Create(Args("nope", v, true, "s")).result, res::kNoVdi);
}

TEST(VdiCatalog, CloneDeleteAndDescendants) {
  VdiCatalog c;
  const uint32_t base = c.Create(Args("base")).vid;
  ASSERT_EQ(c.Create(Args("base", base, true, "gold")).result, res::kSuccess);
  const NewVdiResult clone = c.Create(Args("clone", base));
  ASSERT_EQ(clone.result, res::kSuccess);
  EXPECT_TRUE(c.HasLiveDescendant(base));
  uint32_t vid = 0;
  ASSERT_EQ(c.Delete("clone", "", 0, &vid), res::kSuccess);
  EXPECT_EQ(vid, clone.vid);
  // The deleted clone keeps its bit (its vid is never reused) but no longer resolves.
  EXPECT_EQ(c.Lookup("clone", "", 0, &vid), res::kNoVdi);
  const auto bits = c.Bitmap();
  EXPECT_TRUE(bits[clone.vid / 8] & (1u << (clone.vid % 8)));
  EXPECT_EQ(c.Create(Args("clone", base)).vid, clone.vid + 1);
  EXPECT_EQ(c.Create(Args("x", 0x123456)).result, res::kNoBaseVdi);
}

TEST(VdiCatalog, JsonRoundTrip) {
  VdiCatalog c;
  const uint32_t v = c.Create(Args("a")).vid;
  c.Create(Args("a", v, true, "t"));
  VdiCatalog d;
  d.FromJson(c.ToJson());
  EXPECT_EQ(d.ToJson(), c.ToJson());
  EXPECT_EQ(d.Bitmap(), c.Bitmap());
}

TEST(LockTable, NormalLockIsExclusive) {
  LockTable t;
  EXPECT_EQ(t.Lock(1, proto::kLockNormal, "a"), res::kSuccess);
  EXPECT_EQ(t.Lock(1, proto::kLockNormal, "a"), res::kSuccess);
  EXPECT_EQ(t.Lock(1, proto::kLockNormal, "b"), res::kVdiLocked);
  EXPECT_EQ(t.Lock(1, proto::kLockShared, "b"), res::kVdiLocked);
  EXPECT_EQ(t.Release(1, "b"), res::kVdiNotLocked);
  EXPECT_EQ(t.Release(1, "a"), res::kSuccess);
  EXPECT_EQ(t.Lock(1, proto::kLockNormal, "b"), res::kSuccess);
  EXPECT_EQ(t.Lock(1, 7, "b"), res::kInvalidParms);
}

TEST(LockTable, SharedLockStates) {
  LockTable t;
  EXPECT_EQ(t.Lock(1, proto::kLockShared, "g1/a"), res::kSuccess);
  EXPECT_EQ(t.Lock(1, proto::kLockShared, "g2/b"), res::kSuccess);
  const VdiLock* l = t.Find(1);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->participants.at("g1/a"), ParticipantState::kModified);
  EXPECT_EQ(l->participants.at("g2/b"), ParticipantState::kInvalidated);
  t.DropGateway("g1");
  l = t.Find(1);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->participants.count("g1/a"), 0u);
  t.DropParticipant("g2/b");
  EXPECT_EQ(t.Find(1), nullptr);
  EXPECT_EQ(t.Lock(2, proto::kLockShared, "x"), res::kSuccess);
  LockTable u;
  u.FromJson(t.ToJson());
  EXPECT_EQ(u.ToJson(), t.ToJson());
}

}  // namespace
}  // namespace kelpie::sheep
