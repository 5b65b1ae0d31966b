#include "cluster/ring.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "proto/vdi_name.h"

namespace kelpie::cluster {

namespace {

// splitmix64's finalizer: FNV-1a alone spreads sequential keys poorly over the ring.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t HashBytes(const void* p, size_t n, uint64_t seed = proto::kFnv1aBasis) {
  return Mix(proto::Fnv1a64(std::string_view(static_cast<const char*>(p), n), seed));
}

}  // namespace

std::string NodeInfo::id() const { return fmt::format("{}:{}", addr, port); }

bool NodeInfo::operator<(const NodeInfo& o) const {
  return addr != o.addr ? addr < o.addr : port < o.port;
}

uint32_t DefaultZone(const std::string& addr) {
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) == 1)
    return a.s_addr;  // network order bytes, as sheepdog
  return uint32_t(proto::Fnv1a64(addr));
}

uint64_t HashOid(uint64_t oid) { return HashBytes(&oid, sizeof(oid)); }

Ring::Ring(std::vector<NodeInfo> nodes) : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  std::set<uint32_t> zones;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    const NodeInfo& n = nodes_[i];
    zones.insert(n.zone);
    const std::string id = n.id();
    uint64_t h = HashBytes(id.data(), id.size());
    for (uint32_t v = 0; v < n.nr_vnodes; ++v) {
      vnodes_.push_back({h, i});
      h = HashBytes(&h, sizeof(h), h);  // next point: hash of the previous one
    }
  }
  std::sort(vnodes_.begin(), vnodes_.end(), [](const VNode& a, const VNode& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.node < b.node;
  });
  nr_zones_ = zones.size();
}

std::vector<size_t> Ring::Place(uint64_t oid, size_t copies) const {
  std::vector<size_t> out;
  if (vnodes_.empty()) return out;
  const size_t want = std::min(copies, nr_zones_);
  const uint64_t h = HashOid(oid);
  auto it = std::lower_bound(vnodes_.begin(), vnodes_.end(), h,
                             [](const VNode& v, uint64_t key) { return v.hash < key; });
  size_t start = size_t(it - vnodes_.begin());
  std::vector<uint32_t> used_zones;
  for (size_t i = 0; i < vnodes_.size() && out.size() < want; ++i) {
    const VNode& v = vnodes_[(start + i) % vnodes_.size()];
    const uint32_t zone = nodes_[v.node].zone;
    if (std::find(used_zones.begin(), used_zones.end(), zone) != used_zones.end()) continue;
    used_zones.push_back(zone);
    out.push_back(v.node);
  }
  return out;
}

std::vector<NodeInfo> Ring::PlaceNodes(uint64_t oid, size_t copies) const {
  std::vector<NodeInfo> out;
  for (size_t i : Place(oid, copies)) out.push_back(nodes_[i]);
  return out;
}

}  // namespace kelpie::cluster
