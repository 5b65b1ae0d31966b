// Which epoch a copy set aside as stale is named with, and which stale copy recovery trusts.
//
// A write is acknowledged only once every holder in that epoch's placement stored it, and a sheep
// keeps a live copy only while it stays in the object's placement. So a copy last held by its
// sheep in epoch E has every write acknowledged up to the end of E, and nothing acknowledged
// later. Naming a stale copy with that epoch (not with the epoch it was set aside in, which for a
// sheep coming back after a long absence says nothing about its contents) makes the epochs order
// stale copies by the writes they contain: the newest is the one to recover from.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/node.h"
#include "cluster/ring.h"
#include "sheep/cluster_state.h"

namespace kelpie::sheep {

// The placements of one sheep's past epochs, to answer "when did this sheep last hold oid".
class PlacementHistory {
 public:
  PlacementHistory(const std::vector<EpochRecord>& history, const cluster::NodeInfo& self);
  // The last epoch before `before` in which self was among oid's `copies` holders; 0 if the
  // history does not say (the oldest name: such a copy is trusted last).
  uint32_t LastHeld(uint64_t oid, size_t copies, uint32_t before) const;

 private:
  cluster::NodeInfo self_;
  std::vector<std::pair<uint32_t, cluster::Ring>>
      rings_;  // epochs with self a member, newest first
};

// One stale copy offered to recovery, and where it came from (for the log).
struct StaleOffer {
  uint32_t epoch = 0;
  std::vector<uint8_t> data;
  std::string from;
};

// Keeps the newest of the offers made to it, whatever their order.
class NewestStale {
 public:
  void Offer(StaleOffer offer);
  const std::optional<StaleOffer>& best() const { return best_; }

 private:
  std::optional<StaleOffer> best_;
};

}  // namespace kelpie::sheep
