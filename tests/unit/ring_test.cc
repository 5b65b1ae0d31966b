// Ring placement: copies in distinct zones, effective copies = min(copies, zones), even spread,
// and stability (only objects of a departed node move).
#include "cluster/ring.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "proto/oid.h"

namespace kelpie::cluster {
namespace {

NodeInfo Node(uint16_t port, uint32_t zone) { return NodeInfo{"127.0.0.1", port, zone, 128}; }

uint64_t DataOid(uint32_t vid, uint32_t idx) { return proto::VidToDataOid(vid, idx); }

TEST(Ring, EmptyRingPlacesNothing) {
  Ring r;
  EXPECT_TRUE(r.Place(DataOid(1, 0), 3).empty());
}

TEST(Ring, CopiesGoToDistinctZones) {
  Ring r({Node(7000, 1), Node(7001, 1), Node(7002, 2), Node(7003, 2), Node(7004, 3)});
  EXPECT_EQ(r.nr_zones(), 3u);
  for (uint32_t i = 0; i < 2000; ++i) {
    const auto placed = r.PlaceNodes(DataOid(0x7c2b25, i), 3);
    ASSERT_EQ(placed.size(), 3u);
    std::set<uint32_t> zones;
    for (const auto& n : placed) zones.insert(n.zone);
    EXPECT_EQ(zones.size(), 3u) << "oid index " << i;
  }
}

TEST(Ring, EffectiveCopiesIsMinOfCopiesAndZones) {
  Ring two_zones({Node(7000, 1), Node(7001, 1), Node(7002, 2)});
  EXPECT_EQ(two_zones.Place(DataOid(5, 5), 3).size(), 2u);
  EXPECT_EQ(two_zones.Place(DataOid(5, 5), 1).size(), 1u);
  Ring one({Node(7000, 9)});
  EXPECT_EQ(one.Place(DataOid(5, 5), 3).size(), 1u);
}

TEST(Ring, PlacementIsDeterministicAndOrderIndependent) {
  Ring a({Node(7000, 1), Node(7001, 2), Node(7002, 3)});
  Ring b({Node(7002, 3), Node(7000, 1), Node(7001, 2)});
  for (uint32_t i = 0; i < 500; ++i) {
    EXPECT_EQ(a.PlaceNodes(DataOid(42, i), 2), b.PlaceNodes(DataOid(42, i), 2));
  }
}

TEST(Ring, SpreadWithinFifteenPercentOverThreeNodes) {
  // Primary copies of 30000 objects of several VDIs, inode objects included.
  Ring r({Node(7000, 1), Node(7001, 2), Node(7002, 3)});
  std::map<size_t, size_t> count;
  size_t total = 0;
  for (uint32_t vid : {0x7c2b25u, 0x1ec8cu, 0xabcdefu}) {
    for (uint32_t i = 0; i < 10000; ++i) {
      ++count[r.Place(DataOid(vid, i), 1).at(0)];
      ++total;
    }
    ++count[r.Place(proto::VidToInodeOid(vid), 1).at(0)];
    ++total;
  }
  ASSERT_EQ(count.size(), 3u);
  const double mean = double(total) / 3;
  for (const auto& [node, n] : count) {
    EXPECT_LT(std::abs(double(n) - mean) / mean, 0.15) << "node " << node << " holds " << n;
  }
}

TEST(Ring, OnlyTheLeaversObjectsMove) {
  const std::vector<NodeInfo> all = {Node(7000, 1), Node(7001, 2), Node(7002, 3), Node(7003, 4)};
  Ring before(all);
  Ring after({all[0], all[1], all[3]});
  size_t moved = 0;
  for (uint32_t i = 0; i < 5000; ++i) {
    const uint64_t oid = DataOid(7, i);
    const NodeInfo old_primary = before.PlaceNodes(oid, 1).at(0);
    const NodeInfo new_primary = after.PlaceNodes(oid, 1).at(0);
    if (!(old_primary == all[2])) {
      EXPECT_EQ(old_primary, new_primary) << "object " << i << " moved needlessly";
    } else {
      ++moved;
    }
  }
  EXPECT_GT(moved, 5000u / 4 * 3 / 4);  // roughly a quarter of the objects were on the leaver
}

}  // namespace
}  // namespace kelpie::cluster
