// Ring: consistent hashing of objects onto nodes through virtual nodes, as sheepdog does.
// Each node puts nr_vnodes points on a 64-bit ring; an object's copies go to the nodes owning
// the next points clockwise from the object's hash, skipping nodes whose zone already holds a
// copy. So copies land in distinct zones, and the effective number of copies is
// min(copies, number of zones).
#pragma once
#include <cstdint>
#include <vector>

#include "cluster/node.h"

namespace kelpie::cluster {

class Ring {
 public:
  Ring() = default;
  explicit Ring(std::vector<NodeInfo> nodes);

  // Indices into nodes() of the nodes that hold `copies` copies of oid, primary first.
  // Returns min(copies, nr_zones()) distinct nodes in distinct zones; empty if no nodes.
  std::vector<size_t> Place(uint64_t oid, size_t copies) const;
  // Same, as NodeInfo values.
  std::vector<NodeInfo> PlaceNodes(uint64_t oid, size_t copies) const;

  const std::vector<NodeInfo>& nodes() const { return nodes_; }
  size_t nr_zones() const { return nr_zones_; }

 private:
  struct VNode {
    uint64_t hash;
    uint32_t node;  // index into nodes_
  };
  std::vector<NodeInfo> nodes_;  // sorted by NodeInfo::operator<
  std::vector<VNode> vnodes_;    // sorted by hash
  size_t nr_zones_ = 0;
};

// The object's position on the ring (a well-mixed 64-bit hash of the oid).
uint64_t HashOid(uint64_t oid);

}  // namespace kelpie::cluster
