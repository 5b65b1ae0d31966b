#include "sheep/stale_copies.h"

#include <algorithm>

namespace kelpie::sheep {

PlacementHistory::PlacementHistory(const std::vector<EpochRecord>& history,
                                   const cluster::NodeInfo& self)
    : self_(self) {
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (std::find(it->nodes.begin(), it->nodes.end(), self) == it->nodes.end()) continue;
    rings_.emplace_back(it->epoch, cluster::Ring(it->nodes));
  }
  std::stable_sort(rings_.begin(), rings_.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
}

uint32_t PlacementHistory::LastHeld(uint64_t oid, size_t copies, uint32_t before) const {
  for (const auto& [epoch, ring] : rings_) {
    if (epoch >= before) continue;
    for (const auto& n : ring.PlaceNodes(oid, copies)) {
      if (n == self_) return epoch;
    }
  }
  return 0;
}

void NewestStale::Offer(StaleOffer offer) {
  if (!best_ || offer.epoch > best_->epoch) best_ = std::move(offer);
}

}  // namespace kelpie::sheep
