// Naming of stale copies and the choice among them: the lost acknowledged write the fault soak
// found (recovery took an older stale copy, named with its sheep's rejoin epoch, over a newer one).
#include "sheep/stale_copies.h"

#include <gtest/gtest.h>

namespace kelpie::sheep {
namespace {

using cluster::NodeInfo;

NodeInfo Sheep(uint16_t port) { return NodeInfo{"127.0.0.1", port, uint32_t(port), 128}; }

EpochRecord At(uint32_t epoch, std::vector<NodeInfo> nodes) { return {epoch, 0, std::move(nodes)}; }

const NodeInfo s0 = Sheep(7000), s1 = Sheep(7001), s2 = Sheep(7002), s3 = Sheep(7003);

TEST(StaleCopies, RejoinedCopyIsNamedWithTheLastEpochItsSheepHeldIt) {
  // 3 copies on 3 sheep: everyone holds everything while a member. s1 is away in epochs 2..3.
  const std::vector<EpochRecord> h = {At(1, {s0, s1, s2}), At(2, {s0, s2}), At(3, {s0, s2, s3}),
                                      At(4, {s0, s1, s2, s3})};
  const PlacementHistory s1_past(h, s1);
  for (uint64_t oid : {1ull, 2ull, 0x8000000000000000ull}) {
    EXPECT_EQ(s1_past.LastHeld(oid, 3, 4), 1u) << oid;  // not 4: it missed epochs 2 and 3
  }
  // No epoch of the history had it: the oldest name.
  EXPECT_EQ(PlacementHistory(h, Sheep(7999)).LastHeld(1, 3, 4), 0u);
}

TEST(StaleCopies, CopyLeftBehindIsNamedWithTheLastEpochItsSheepHeldIt) {
  // One copy; s0 holds oid in epoch 1 and no longer once s1 and s2 have joined (epochs 2, 3), even
  // when recovery of epoch 2 was cut short and the copy is set aside only in epoch 3.
  const std::vector<EpochRecord> h = {At(1, {s0}), At(2, {s0, s1}), At(3, {s0, s1, s2})};
  const cluster::Ring r2(h[1].nodes), r3(h[2].nodes);
  uint64_t oid = 0;
  while (!(r2.PlaceNodes(oid, 1).at(0) == s1 && r3.PlaceNodes(oid, 1).at(0) == s2)) ++oid;
  const PlacementHistory s0_past(h, s0);
  EXPECT_EQ(s0_past.LastHeld(oid, 1, 3), 1u);
  EXPECT_EQ(s0_past.LastHeld(oid, 1, 4), 1u);
  // s1 held it in epoch 2: leaving it in epoch 3 names its copy 2, newer than s0's.
  EXPECT_EQ(PlacementHistory(h, s1).LastHeld(oid, 1, 4), 2u);
  EXPECT_EQ(PlacementHistory(h, s2).LastHeld(oid, 1, 4), 3u);
}

TEST(StaleCopies, NewestStaleCopyWinsWhateverTheOrderOfOffers) {
  // The soak's loss: the first copy found (s1's, set aside on rejoin, held last in epoch 15) was
  // taken over this sheep's own copy (held until epoch 17), which was offered last.
  NewestStale newest;
  EXPECT_FALSE(newest.best().has_value());
  newest.Offer({15, {1}, "s1"});
  newest.Offer({9, {2}, "s2"});
  newest.Offer({17, {3}, "own stale copy"});
  newest.Offer({16, {4}, "s3"});
  ASSERT_TRUE(newest.best().has_value());
  EXPECT_EQ(newest.best()->epoch, 17u);
  EXPECT_EQ(newest.best()->data, std::vector<uint8_t>{3});
  EXPECT_EQ(newest.best()->from, "own stale copy");
}

}  // namespace
}  // namespace kelpie::sheep
