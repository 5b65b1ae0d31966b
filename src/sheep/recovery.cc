#include "sheep/recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "proto/ec.h"
#include "proto/oid.h"
#include "sheep/asio_util.h"
#include "sheep/erasure_code.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"
#include "sheep/stale_copies.h"

namespace kelpie::sheep {

using asio::use_awaitable;

void Recovery::OnEpoch(uint32_t epoch, bool rejoined) {
  epoch_ = epoch;
  complete_ = false;
  done_ = 0;
  total_ = 0;
  SetAside(epoch, rejoined);
  asio::co_spawn(sheep_.io(), Run(epoch), asio::detached);
}

void Recovery::SetAside(uint32_t epoch, bool rejoined) {
  // Each stale copy is named with the last epoch its sheep held it in (stale_copies.h).
  std::vector<std::pair<uint64_t, uint32_t>> moves;  // oid, name epoch
  sheep_.WithState([&](const ClusterState& s) {
    const PlacementHistory placements(s.history, sheep_.self());
    for (uint64_t oid : sheep_.store().List()) {
      if (proto::IsStripKey(oid)) {
        // Strips: all set aside on rejoin; otherwise Run sets aside those no longer held, after
        // its own pulls (see there).
        if (rejoined) moves.emplace_back(oid, epoch);
        continue;
      }
      const size_t copies = s.CopiesOf(proto::OidToVid(oid));
      const uint32_t held = placements.LastHeld(oid, copies, rejoined ? epoch : epoch + 1);
      if (rejoined || held != epoch) moves.emplace_back(oid, held);
    }
    return 0;
  });
  for (const auto& [oid, held] : moves) {
    std::lock_guard lk(ObjectLock(oid));
    sheep_.store().MoveToStale(oid, held);
  }
  if (!moves.empty()) {
    spdlog::info("epoch {}: set aside {} local objects as stale{}", epoch, moves.size(),
                 rejoined ? " (rejoined)" : "");
  }
}

asio::awaitable<void> Recovery::Run(uint32_t epoch) {
  // Gather every oid known anywhere (live or stale copies).
  std::unordered_set<uint64_t> all;
  const View v = sheep_.view();
  if (!v.formatted || v.epoch != epoch) {
    if (Current(epoch)) complete_ = true;
    co_return;
  }
  for (const auto& node : v.ring->nodes()) {
    std::vector<uint64_t> oids;
    const uint32_t rc = co_await PeerListObjects(sheep_, node, oids);
    if (rc != proto::res::kSuccess) {
      spdlog::warn("recovery epoch {}: cannot list objects of {}: {}", epoch, node.id(),
                   proto::ResultText(rc));
    }
    all.insert(oids.begin(), oids.end());
    if (!Current(epoch)) co_return;
  }
  // Every strip of an erasure-coded object is wanted somewhere, even one no node has any more.
  for (uint64_t key : std::vector<uint64_t>(all.begin(), all.end())) {
    if (!proto::IsStripKey(key)) continue;
    const uint64_t oid = proto::ObjectOfKey(key);
    const auto ec = sheep_.WithState([&](const ClusterState& s) { return s.EcOf(oid); });
    for (int i = 0; i < ec.strips(); ++i) all.insert(proto::StripKey(oid, i));
  }
  // Decide what this sheep must pull and which strips it must set aside (replicated copies it
  // no longer holds were set aside by SetAside). A strip this sheep no longer holds is set aside
  // only after its own pulls: the node that should hold it now may rebuild its strip from it, or
  // the strips this sheep rebuilds may need it.
  std::vector<uint64_t> pending, leaving_strips;
  for (uint64_t key : all) {
    const bool mine = HoldsHere(v, key);
    const bool have = sheep_.store().Exists(key);
    if (mine && !have) {
      pending.push_back(key);
    } else if (!mine && have && proto::IsStripKey(key)) {
      leaving_strips.push_back(key);
    }
  }
  total_ = pending.size();
  if (!pending.empty())
    spdlog::info("recovery epoch {}: {} objects to pull", epoch, pending.size());
  for (uint64_t oid : pending) {
    if (!Current(epoch)) break;
    const uint32_t rc = co_await EnsureLocal(oid);
    if (rc != proto::res::kSuccess) {
      spdlog::error("recovery epoch {}: object {:016x} not recovered: {}", epoch, oid,
                    proto::ResultText(rc));
    }
    ++done_;
  }
  // Also when a newer epoch began meanwhile: these strips missed this epoch's writes.
  for (uint64_t key : leaving_strips) {
    std::lock_guard lk(ObjectLock(key));
    sheep_.store().MoveToStale(key, epoch);
  }
  if (Current(epoch)) {
    complete_ = true;
    if (!pending.empty()) spdlog::info("recovery epoch {}: done", epoch);
  }
}

asio::awaitable<uint32_t> Recovery::EnsureLocal(uint64_t oid) {
  if (sheep_.store().Exists(oid)) co_return proto::res::kSuccess;
  if (complete_.load()) co_return proto::res::kNoObj;
  auto me = std::make_shared<Waiter>(sheep_.io(), 1);
  bool leader = false;
  {
    std::lock_guard lk(inflight_mu_);
    auto& slot = inflight_[oid];
    if (!slot) {
      slot = std::make_shared<InFlight>();
      leader = true;
    } else {
      slot->waiters.push_back(me);
    }
  }
  if (!leader) {
    auto [ec, rc] = co_await me->async_receive(kTuple);
    co_return ec ? proto::res::kEio : rc;
  }
  const uint32_t rc = co_await Fetch(oid);
  std::shared_ptr<InFlight> done;
  {
    std::lock_guard lk(inflight_mu_);
    done = inflight_[oid];
    inflight_.erase(oid);
  }
  for (auto& w : done->waiters) w->try_send(asio::error_code{}, rc);
  co_return rc;
}

bool Recovery::HoldsHere(const View& v, uint64_t key) const {
  const uint64_t oid = proto::ObjectOfKey(key);
  const size_t copies =
      sheep_.WithState([&](const ClusterState& s) { return s.CopiesOf(proto::OidToVid(oid)); });
  const auto nodes = v.ring->PlaceNodes(oid, copies);
  if (proto::IsStripKey(key)) {
    const size_t strip = size_t(proto::StripOfKey(key));
    return strip < nodes.size() && nodes[strip] == sheep_.self();
  }
  return std::find(nodes.begin(), nodes.end(), sheep_.self()) != nodes.end();
}

asio::awaitable<uint32_t> Recovery::Fetch(uint64_t oid) {
  if (proto::IsStripKey(oid)) co_return co_await FetchStrip(oid);
  // Candidates: the holders of earlier epochs that are still members, newest epoch first, then
  // every other member.
  std::vector<cluster::NodeInfo> candidates;
  auto add = [&](const cluster::NodeInfo& n) {
    if (n == sheep_.self()) return;
    for (const auto& c : candidates) {
      if (c == n) return;
    }
    candidates.push_back(n);
  };
  const View v = sheep_.view();
  sheep_.WithState([&](const ClusterState& s) {
    const size_t copies = s.CopiesOf(proto::OidToVid(oid));
    for (uint32_t e = s.epoch; e >= 1 && e + 16 > s.epoch; --e) {
      const auto members = s.MembersAt(e);
      if (members.empty()) continue;
      cluster::Ring ring(members);
      for (const auto& n : ring.PlaceNodes(oid, copies)) {
        for (const auto& m : s.members) {
          if (m == n) add(n);
        }
      }
    }
    for (const auto& m : s.members) add(m);
    return 0;
  });
  (void)v;
  for (const auto& node : candidates) {
    WholeCopy copy;
    const uint32_t rc = co_await PeerReadWhole(sheep_, node, oid, false, copy);
    if (rc != proto::res::kSuccess) continue;
    co_return StoreRecovered(oid, copy.data, node.id());
  }
  // No live copy anywhere: the newest stale copy of every candidate's and this sheep's, since a
  // stale copy's epoch says which acknowledged writes it holds (stale_copies.h).
  co_return co_await RecoverNewestStale(oid, candidates, 0);
}

asio::awaitable<uint32_t> Recovery::RecoverNewestStale(uint64_t key,
                                                       const std::vector<cluster::NodeInfo>& nodes,
                                                       size_t size) {
  NewestStale newest;
  for (const auto& node : nodes) {
    if (node == sheep_.self()) continue;
    WholeCopy copy;
    const uint32_t rc = co_await PeerReadWhole(sheep_, node, key, true, copy);
    if (rc != proto::res::kSuccess || (size != 0 && copy.data.size() != size)) continue;
    if (!copy.stale_epoch) co_return StoreRecovered(key, copy.data, node.id());  // live meanwhile
    newest.Offer({*copy.stale_epoch, std::move(copy.data), node.id() + " (stale)"});
  }
  if (auto mine = sheep_.store().ReadStale(key)) {
    if (size == 0 || mine->data.size() == size)
      newest.Offer({mine->epoch, std::move(mine->data), "own stale copy"});
  }
  const auto& best = newest.best();
  if (!best) co_return proto::res::kNoObj;
  spdlog::warn("recovering {:016x} from the stale copy of epoch {} on {}", key, best->epoch,
               best->from);
  co_return StoreRecovered(key, best->data, best->from);
}

// A strip: a live copy of the same strip if some node has one (the placement moved), else
// rebuilt from D other live strips, else the newest stale copy of the same strip (any node's or
// this sheep's), else rebuilt from D other strips including stale ones.
asio::awaitable<uint32_t> Recovery::FetchStrip(uint64_t key) {
  const uint64_t oid = proto::ObjectOfKey(key);
  const int strip = proto::StripOfKey(key);
  const View v = sheep_.view();
  const proto::EcPolicy ec = sheep_.WithState([&](const ClusterState& s) { return s.EcOf(oid); });
  const uint64_t object_size =
      sheep_.WithState([&](const ClusterState& s) { return s.ObjectSizeOf(proto::OidToVid(oid)); });
  const std::vector<cluster::NodeInfo> members =
      sheep_.WithState([&](const ClusterState& s) { return s.members; });
  if (!ec.coded() || strip >= ec.strips()) co_return proto::res::kNoObj;
  const size_t strip_size = object_size / size_t(ec.data);
  for (const auto& node : members) {
    if (node == sheep_.self()) continue;
    WholeCopy copy;
    const uint32_t rc = co_await PeerReadWhole(sheep_, node, key, false, copy);
    if (rc == proto::res::kSuccess && copy.data.size() == strip_size) {
      co_return StoreRecovered(key, copy.data, node.id());
    }
  }
  const size_t copies =
      sheep_.WithState([&](const ClusterState& s) { return s.CopiesOf(proto::OidToVid(oid)); });
  const auto placement = v.ring->PlaceNodes(oid, copies);
  std::vector<std::vector<uint8_t>> strips(size_t(ec.strips()));
  int found = 0;
  for (bool allow_stale : {false, true}) {
    if (allow_stale) {
      // Too few live strips to rebuild from. The strip's previous holder may already have set
      // its copy aside (the placement moved on and that sheep finished its own recovery first):
      // the newest stale copy of this very strip is one coherent copy, better than a rebuild
      // that mixes stale strips.
      const uint32_t rc = co_await RecoverNewestStale(key, members, strip_size);
      if (rc != proto::res::kNoObj) co_return rc;
    }
    for (int j = 0; j < ec.strips() && found < ec.data; ++j) {
      if (j == strip || !strips[size_t(j)].empty()) continue;
      // The node that should hold strip j first, then everyone (this sheep included).
      std::vector<cluster::NodeInfo> order;
      if (size_t(j) < placement.size()) order.push_back(placement[size_t(j)]);
      order.insert(order.end(), members.begin(), members.end());
      for (const auto& node : order) {
        WholeCopy copy;
        const uint32_t rc =
            co_await PeerReadWhole(sheep_, node, proto::StripKey(oid, j), allow_stale, copy);
        if (rc == proto::res::kSuccess && copy.data.size() == strip_size) {
          strips[size_t(j)] = std::move(copy.data);
          ++found;
          break;
        }
      }
    }
    if (found >= ec.data) {
      const int want[] = {strip};
      if (!ErasureCode::Shared(ec.data, ec.parity).Rebuild(strips, strip_size, want))
        co_return proto::res::kEio;
      co_return StoreRecovered(
          key, strips[size_t(strip)],
          fmt::format("{} other strips{}", ec.data, allow_stale ? " (some stale)" : ""));
    }
  }
  co_return proto::res::kNoObj;
}

}  // namespace kelpie::sheep

namespace kelpie::sheep {

uint32_t Recovery::StoreRecovered(uint64_t oid, const std::vector<uint8_t>& data,
                                  const std::string& from) {
  std::lock_guard lk(ObjectLock(oid));
  if (sheep_.store().Exists(oid)) return proto::res::kSuccess;
  const uint32_t rc = sheep_.store().CreateAndWrite(oid, data.size(), 0, data);
  if (rc == proto::res::kSuccess) {
    spdlog::debug("recovered {:016x} ({} bytes) from {}", oid, data.size(), from);
  }
  return rc;
}

nlohmann::json Recovery::Status() const {
  return {{"epoch", epoch_.load()},
          {"recovering", !complete_.load()},
          {"done", done_.load()},
          {"total", total_.load()}};
}

}  // namespace kelpie::sheep
