// LockTable coherence states: every transition of a shared-lock participant (lock, refresh,
// index write, snapshot, release, leave in each state) and the staleness rule over ancestors.
#include "sheep/lock_table.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "proto/constants.h"

namespace kelpie::sheep {
namespace {

namespace res = proto::res;
using S = ParticipantState;

constexpr uint32_t kVid = 0x100;

class SharedLock : public ::testing::Test {
 protected:
  // a, b, c join in that order: a Modified, b and c Invalidated (a is Modified).
  void SetUp() override {
    for (const char* p : {"g1/a", "g2/b", "g2/c"}) {
      ASSERT_EQ(t.Lock(kVid, proto::kLockShared, p), res::kSuccess);
    }
  }
  S State(const std::string& p) const { return *t.StateOf(kVid, p); }
  uint64_t Gen() const { return t.Find(kVid)->gen; }
  uint32_t Parent(uint32_t v) const {
    auto it = parents.find(v);
    return it == parents.end() ? 0 : it->second;
  }
  bool MustRefresh(const std::string& p, uint32_t oid_vid) const {
    return t.MustRefresh(p, oid_vid, [this](uint32_t v) { return Parent(v); });
  }
  LockTable t;
  std::map<uint32_t, uint32_t> parents;
};

TEST_F(SharedLock, JoinStates) {
  EXPECT_EQ(State("g1/a"), S::kModified);
  EXPECT_EQ(State("g2/b"), S::kInvalidated);
  EXPECT_EQ(State("g2/c"), S::kInvalidated);
  // Nobody Modified: a newcomer joins Shared.
  LockTable u;
  ASSERT_EQ(u.Lock(7, proto::kLockShared, "x"), res::kSuccess);
  ASSERT_TRUE(u.Validate(7, "x", u.Find(7)->gen));
  EXPECT_EQ(*u.StateOf(7, "x"), S::kShared);
  ASSERT_EQ(u.Lock(7, proto::kLockShared, "y"), res::kSuccess);
  EXPECT_EQ(*u.StateOf(7, "y"), S::kShared);
  // Locking again is idempotent; a normal lock on a shared VDI conflicts.
  EXPECT_EQ(u.Lock(7, proto::kLockShared, "y"), res::kSuccess);
  EXPECT_EQ(u.Lock(7, proto::kLockNormal, "z"), res::kVdiLocked);
}

TEST_F(SharedLock, RefreshMakesSharedFromEveryState) {
  const uint64_t g = Gen();
  EXPECT_TRUE(t.Validate(kVid, "g2/b", g));  // Invalidated -> Shared
  EXPECT_EQ(State("g2/b"), S::kShared);
  EXPECT_TRUE(t.Validate(kVid, "g2/b", g));  // Shared -> Shared
  EXPECT_EQ(State("g2/b"), S::kShared);
  EXPECT_TRUE(t.Validate(kVid, "g1/a", g));  // Modified -> Shared
  EXPECT_EQ(State("g1/a"), S::kShared);
  EXPECT_EQ(State("g2/c"), S::kInvalidated);  // others untouched
  EXPECT_EQ(Gen(), g);
}

TEST_F(SharedLock, RefreshThatRacedAnIndexWriteStaysInvalidated) {
  const uint64_t before = Gen();
  t.Modify(kVid, "g1/a");  // an index write ordered after the reader looked at the generation
  EXPECT_FALSE(t.Validate(kVid, "g2/b", before));
  EXPECT_EQ(State("g2/b"), S::kInvalidated);
  EXPECT_TRUE(t.Validate(kVid, "g2/b", Gen()));
  EXPECT_EQ(State("g2/b"), S::kShared);
}

TEST_F(SharedLock, IndexWriteInvalidatesEveryoneElse) {
  const uint64_t g = Gen();
  ASSERT_TRUE(t.Validate(kVid, "g2/b", g));
  ASSERT_TRUE(t.Validate(kVid, "g2/c", g));
  EXPECT_TRUE(t.NeedsModify(kVid, "g2/b"));
  t.Modify(kVid, "g2/b");  // Shared writer -> Modified
  EXPECT_EQ(State("g2/b"), S::kModified);
  EXPECT_EQ(State("g1/a"), S::kInvalidated);  // Modified -> Invalidated
  EXPECT_EQ(State("g2/c"), S::kInvalidated);  // Shared -> Invalidated
  EXPECT_EQ(Gen(), g + 1);
  EXPECT_FALSE(t.NeedsModify(kVid, "g2/b"));  // steady state: one writer, others invalid
  t.Modify(kVid, "g2/c");                     // Invalidated writer -> Modified
  EXPECT_EQ(State("g2/c"), S::kModified);
  EXPECT_EQ(State("g2/b"), S::kInvalidated);
  // A non-participant's write changes nothing.
  t.Modify(kVid, "g9/z");
  EXPECT_EQ(State("g2/c"), S::kModified);
  EXPECT_FALSE(t.NeedsModify(kVid, "g9/z"));
}

TEST_F(SharedLock, InvalidatedMustRefreshForTheVdiAndItsAncestors) {
  parents = {{kVid, 0x50}, {0x50, 0x10}, {0x77, 0x10}};
  EXPECT_TRUE(MustRefresh("g2/b", kVid));
  EXPECT_TRUE(MustRefresh("g2/b", 0x50));   // the parent's objects (the case the original misses)
  EXPECT_TRUE(MustRefresh("g2/b", 0x10));   // the grandparent's
  EXPECT_FALSE(MustRefresh("g2/b", 0x77));  // a sibling is not this VDI's data
  EXPECT_FALSE(MustRefresh("g1/a", kVid));  // Modified
  EXPECT_FALSE(MustRefresh("g9/z", kVid));  // not a participant
  ASSERT_TRUE(t.Validate(kVid, "g2/b", Gen()));
  EXPECT_FALSE(MustRefresh("g2/b", 0x50));  // Shared
}

TEST_F(SharedLock, SnapshotMovesTheLockAndInvalidatesAll) {
  ASSERT_TRUE(t.Validate(kVid, "g2/b", Gen()));
  t.MoveToSnapshotChild(kVid, 0x200);
  EXPECT_EQ(t.Find(kVid), nullptr);
  const VdiLock* l = t.Find(0x200);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->participants.size(), 3u);
  for (const auto& [p, s] : l->participants) EXPECT_EQ(s, S::kInvalidated) << p;
  parents = {{0x200, kVid}};
  // A participant still reading the snapshot's objects through its old inode is caught.
  EXPECT_TRUE(t.MustRefresh("g2/b", kVid, [this](uint32_t v) { return Parent(v); }));
}

TEST_F(SharedLock, LeaveInEachState) {
  ASSERT_TRUE(t.Validate(kVid, "g2/c", Gen()));  // a Modified, b Invalidated, c Shared
  // Invalidated leaves: nothing else changes.
  uint64_t g = Gen();
  t.DropParticipant("g2/b");
  EXPECT_EQ(t.StateOf(kVid, "g2/b"), nullptr);
  EXPECT_EQ(State("g1/a"), S::kModified);
  EXPECT_EQ(State("g2/c"), S::kShared);
  EXPECT_EQ(Gen(), g);
  // Shared leaves: nothing else changes.
  ASSERT_EQ(t.Lock(kVid, proto::kLockShared, "g3/d"), res::kSuccess);  // joins Invalidated
  t.DropParticipant("g2/c");
  EXPECT_EQ(State("g1/a"), S::kModified);
  EXPECT_EQ(State("g3/d"), S::kInvalidated);
  // Modified leaves: the others proceed (a refresh makes them Shared); they are invalidated,
  // since its last index update may have landed without its post-write invalidation.
  ASSERT_TRUE(t.Validate(kVid, "g3/d", Gen()));
  g = Gen();
  t.DropParticipant("g1/a");
  EXPECT_EQ(State("g3/d"), S::kInvalidated);
  EXPECT_EQ(Gen(), g + 1);
  EXPECT_TRUE(t.Validate(kVid, "g3/d", Gen()));
  // The last one leaves: the lock is gone.
  t.DropParticipant("g3/d");
  EXPECT_EQ(t.Find(kVid), nullptr);
}

TEST_F(SharedLock, GatewayLeaveDropsItsParticipants) {
  t.DropGateway("g2");
  const VdiLock* l = t.Find(kVid);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->participants.size(), 1u);
  EXPECT_EQ(State("g1/a"), S::kModified);
  t.DropGateway("g1");
  EXPECT_EQ(t.Find(kVid), nullptr);
}

TEST_F(SharedLock, ReleaseAndUnlock) {
  EXPECT_EQ(t.Release(kVid, "g2/b"), res::kSuccess);
  EXPECT_EQ(t.Release(kVid, "g2/b"), res::kVdiNotLocked);
  EXPECT_EQ(t.Unlock(kVid), res::kSuccess);
  EXPECT_EQ(t.Find(kVid), nullptr);
  EXPECT_EQ(t.Unlock(kVid), res::kVdiNotLocked);
}

TEST_F(SharedLock, StateSurvivesSerialization) {
  t.Modify(kVid, "g2/b");
  LockTable u;
  u.FromJson(t.ToJson());
  EXPECT_EQ(u.ToJson(), t.ToJson());
  EXPECT_EQ(u.Find(kVid)->gen, Gen());
  EXPECT_EQ(*u.StateOf(kVid, "g2/b"), S::kModified);
}

}  // namespace
}  // namespace kelpie::sheep
