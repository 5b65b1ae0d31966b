// Recovery: after every membership change, each sheep pulls the objects it must now hold and
// does not have, from the nodes that held them in earlier epochs; and sets aside (as stale) the
// copies it no longer should hold, so they never go stale while looking live.
//
// Rules that keep every live copy current:
//  - a sheep that (re)joins an existing cluster sets aside everything it holds: it was away and
//    cannot know which of its copies missed writes;
//  - a live copy exists only on a node that has held that object in every epoch since it got it;
//  - sources are asked for live copies first; only when no live copy exists anywhere is the
//    newest stale copy used, newest by the last epoch its sheep held it in (stale_copies.h).
// A copy is set aside as soon as its sheep leaves the placement, not when the new holders have
// recovered it: kept live it would miss the writes of the new epoch and could later be served
// as current; set aside under its last held epoch it stays a correctly ordered fallback.
// Erasure-coded objects are kept as strips (proto/ec.h): a node that should hold strip i and lacks
// it takes a live copy of strip i if one exists, else rebuilds it from any D other strips, else
// takes the newest stale copy of strip i.
// I/O goes on during recovery: a request for an object this sheep should hold but has not pulled
// yet pulls it first (EnsureLocal).
#pragma once
#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <vector>

#include "cluster/node.h"

namespace kelpie::sheep {

class Sheep;
struct View;

class Recovery {
 public:
  explicit Recovery(Sheep& sheep) : sheep_(sheep) {}
  // Called (on any thread) once a membership change has been applied; `rejoined` when this
  // sheep itself just joined a running cluster.
  void OnEpoch(uint32_t epoch, bool rejoined);
  // Makes sure this sheep has its live copy of oid if one exists anywhere; returns kSuccess if the
  // object is now local, kNoObj if nobody has it.
  asio::awaitable<uint32_t> EnsureLocal(uint64_t oid);
  // {"epoch", "recovering", "done", "total"}
  nlohmann::json Status() const;
  // Stripe lock held around every local store mutation of an object, so that recovery never
  // overwrites a copy a client wrote meanwhile.
  std::mutex& ObjectLock(uint64_t oid) { return stripes_[oid % kStripes]; }

 private:
  // Sets aside, before anything else of the epoch, the local copies this sheep may not keep live:
  // all of them when it rejoined (it was away and cannot know which missed writes), else those
  // it no longer holds. Here rather than in Run so that an epoch whose recovery is cut short by
  // the next one still sets aside what it must (a copy out of the placement for one epoch misses
  // that epoch's writes even if the placement comes back to it).
  void SetAside(uint32_t epoch, bool rejoined);
  asio::awaitable<void> Run(uint32_t epoch);
  asio::awaitable<uint32_t> Fetch(uint64_t oid);
  asio::awaitable<uint32_t> FetchStrip(uint64_t key);
  // Stores the newest stale copy of `key` among those of `nodes` (a live copy found meanwhile
  // wins at once) and this sheep's own as the live copy; kNoObj when there is none. size: the
  // only length accepted (0: any).
  asio::awaitable<uint32_t> RecoverNewestStale(uint64_t key,
                                               const std::vector<cluster::NodeInfo>& nodes,
                                               size_t size);
  // Whether this sheep should hold `key` (an object's copy, or strip i of an erasure-coded
  // object: the i-th node of its placement) in view v.
  bool HoldsHere(const View& v, uint64_t key) const;
  // Stores a pulled copy unless a client wrote the object meanwhile.
  uint32_t StoreRecovered(uint64_t oid, const std::vector<uint8_t>& data, const std::string& from);
  bool Current(uint32_t epoch) const { return epoch_.load() == epoch; }

  static constexpr size_t kStripes = 256;
  Sheep& sheep_;
  std::array<std::mutex, kStripes> stripes_;
  std::atomic<uint32_t> epoch_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> complete_{true};
  std::atomic<uint64_t> done_{0}, total_{0};

  // Objects being fetched right now; later askers wait on the same fetch.
  using Waiter = asio::experimental::concurrent_channel<void(asio::error_code, uint32_t)>;
  struct InFlight {
    std::vector<std::shared_ptr<Waiter>> waiters;
  };
  std::mutex inflight_mu_;
  std::map<uint64_t, std::shared_ptr<InFlight>> inflight_;
};

}  // namespace kelpie::sheep
