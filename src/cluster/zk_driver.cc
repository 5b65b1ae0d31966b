#include "cluster/zk_driver.h"

#include <spdlog/spdlog.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

namespace kelpie::cluster {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr size_t kSnapshotPart = 512 * 1024;  // below ZooKeeper's 1 MiB znode limit
constexpr auto kPublishEvery = 200ms;
constexpr auto kFullPassEvery = 1s;
constexpr auto kGcEvery = 2s;
constexpr auto kRejoinEvery = 2s;
constexpr size_t kGcBatch = 10000;

std::string NewNonce() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::string Child(const char* dir, const std::string& name) {
  return std::string(dir) + "/" + name;
}

bool Loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]" || host == "localhost";
}

}  // namespace

ZkDriver::ZkDriver(zk::Spec spec) : spec_(std::move(spec)) {}

ZkDriver::~ZkDriver() { Stop(); }

bool ZkDriver::Start(const NodeInfo& self, SnapshotFn snapshot, EventFn on_event) {
  self_ = self;
  snapshot_ = std::move(snapshot);
  on_event_ = std::move(on_event);
  nonce_ = NewNonce();
  bool remote_ensemble = false;
  for (size_t pos = 0; pos < spec_.hosts.size();) {
    const size_t end = std::min(spec_.hosts.find(',', pos), spec_.hosts.size());
    const std::string host = spec_.hosts.substr(pos, end - pos);
    remote_ensemble |= !Loopback(host.substr(0, host.rfind(':')));
    pos = end + 1;
  }
  if (remote_ensemble && Loopback(self_.addr)) {
    spdlog::warn(
        "zookeeper: this sheep announces {}, which other hosts cannot reach: give its "
        "address with -b or -y",
        self_.id());
  }
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  OpenSession();
  if (zh_ == nullptr) {
    spdlog::error("zookeeper: cannot create a client for {}: {}", spec_.hosts,
                  std::strerror(errno));
    return false;
  }
  spdlog::info("zookeeper: joining through {} (session timeout {} s)", spec_.hosts,
               spec_.timeout_ms / 1000);
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  watchdog_ = std::thread([this] { Watchdog(); });
  return true;
}

void ZkDriver::Notify(const std::string& payload) {
  {
    std::lock_guard lk(mu_);
    outbox_.push_back(payload);
  }
  Wake();
}

void ZkDriver::Stop() {
  if (!started_) return;
  started_ = false;
  stop_ = true;
  Wake();
  thread_.join();
  watchdog_.join();
  if (zh_ != nullptr && phase_ == Phase::kMember && connected_ && !expired_) {
    WriteSnapshots();  // a newcomer may be waiting for this master's snapshot
    zk::Entry leave;
    leave.type = zk::Entry::Type::kLeave;
    leave.nonce = nonce_;
    const int rc = Push(leave);
    if (rc != ZOK) spdlog::warn("zookeeper: cannot queue this node's leave: {}", zerror(rc));
  }
  if (zh_ != nullptr) zookeeper_close(zh_);  // ends the session: the member znode goes
  zh_ = nullptr;
}

void ZkDriver::Wake() {
  {
    std::lock_guard lk(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void ZkDriver::SetServing(bool serving) {
  std::lock_guard lk(serving_mu_);
  if (serving_ == serving) return;
  serving_ = serving;
  if (serving_fn_) serving_fn_(serving);
}

void ZkDriver::Loop() {
  while (!stop_) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, 100ms, [this] { return wake_ || stop_; });
      wake_ = false;
    }
    if (stop_) break;
    if (expired_) {
      SetServing(false);
      spdlog::warn(
          "zookeeper: session expired: the cluster has dropped this node; rejoining "
          "with a new session");
      zookeeper_close(zh_);
      zh_ = nullptr;
      abandoned_.push_back(nonce_);
      nonce_ = NewNonce();
      member_created_ = false;
      holding_lock_ = false;
      owed_.clear();
      phase_ = Phase::kJoining;
      OpenSession();
      if (zh_ == nullptr) {
        spdlog::error("zookeeper: cannot create a client: {}", std::strerror(errno));
        std::this_thread::sleep_for(1s);
        expired_ = true;
      }
      continue;
    }
    if (!connected_) continue;
    switch (phase_.load()) {
      case Phase::kJoining:
        TryJoin();
        break;
      case Phase::kAwaitSnapshot:
        TryLoadSnapshot();
        break;
      case Phase::kMember:
        MemberWork();
        break;
    }
  }
}

std::string ZkDriver::MyMemberPath() const {
  return Child(zk::kMembers, zk::MemberName(self_, nonce_));
}

std::string ZkDriver::MemberData(bool with_applied) const {
  json j = {{"node", json::parse(zk::NodeToJsonText(self_))}};
  if (with_applied) j["applied"] = applied_;
  return j.dump();
}

bool ZkDriver::EnsureLayout() {
  if (layout_ok_) return true;
  for (const char* p : {zk::kRoot, zk::kMembers, zk::kQueue, zk::kSnapshots}) {
    const int rc = Create(p, "", ZOO_PERSISTENT);
    if (rc != ZOK && rc != ZNODEEXISTS) {
      spdlog::warn("zookeeper: cannot create {}: {}", p, zerror(rc));
      return false;
    }
  }
  layout_ok_ = true;
  return true;
}

void ZkDriver::TryJoin() {
  if (!EnsureLayout()) return;
  if (!member_created_) {
    const int rc = Create(MyMemberPath(), MemberData(false), ZOO_EPHEMERAL);
    if (rc != ZOK && rc != ZNODEEXISTS) return;
    member_created_ = true;
  }
  // The lock makes "nobody is there: found" and "somebody is: queue a join" one decision.
  const std::string session = fmt::format("{:x}", zoo_client_id(zh_)->client_id);
  if (!holding_lock_) {
    const int rc = Create(zk::kLock, session, ZOO_EPHEMERAL);
    if (rc == ZNODEEXISTS) {
      std::string holder;
      if (Get(zk::kLock, holder) != ZOK || holder != session) {
        Exists(zk::kLock, true);  // woken when it goes
        return;
      }
    } else if (rc != ZOK) {
      return;
    }
    holding_lock_ = true;
  }
  JoinUnderLock();
  ReleaseLock();
}

void ZkDriver::ReleaseLock() {
  if (!holding_lock_ || phase_ == Phase::kJoining) return;
  // A founder holds it until its member znode says it is one: the next node must see a cluster.
  if (phase_ == Phase::kMember && published_ == 0 && !PublishApplied(true)) return;
  const int rc = Delete(zk::kLock);
  if (rc == ZOK || rc == ZNONODE) holding_lock_ = false;
}

void ZkDriver::JoinUnderLock() {
  std::vector<std::string> names;
  if (Children(zk::kMembers, names, false) != ZOK) return;
  bool cluster_alive = false;
  std::vector<std::string> stale;  // earlier incarnations of this very node (it died, restarted)
  for (const std::string& name : names) {
    const auto nonce = zk::NonceOfMember(name);
    if (!nonce || *nonce == nonce_) continue;
    std::string data;
    const int rc = Get(Child(zk::kMembers, name), data);
    if (rc == ZNONODE) continue;
    if (rc != ZOK) return;
    json j;
    try {
      j = json::parse(data);
    } catch (const std::exception&) {
      continue;
    }
    const auto node = zk::NodeFromJsonText(j.value("node", json::object()).dump());
    if (node && *node == self_) {
      stale.push_back(name);
      abandoned_.push_back(*nonce);
      continue;
    }
    cluster_alive |= j.contains("applied");
  }
  // Earlier incarnations leave before this one joins: a node is on the ring once.
  std::sort(abandoned_.begin(), abandoned_.end());
  abandoned_.erase(std::unique(abandoned_.begin(), abandoned_.end()), abandoned_.end());
  for (const std::string& old : abandoned_) {
    zk::Entry leave;
    leave.type = zk::Entry::Type::kLeave;
    leave.nonce = old;
    if (Push(leave) != ZOK) return;
  }
  abandoned_.clear();
  for (const std::string& name : stale) {
    spdlog::warn("zookeeper: removing {}, an earlier incarnation of this node", name);
    const int rc = Delete(Child(zk::kMembers, name));
    if (rc != ZOK && rc != ZNONODE) return;
  }
  zk::Entry e;
  e.nonce = nonce_;
  e.node = self_;
  if (!cluster_alive) {
    e.type = zk::Entry::Type::kFound;
    std::string created;
    // An ambiguous failure is retried: a stray found entry is ignored by everyone.
    if (Create(zk::kQueuePrefix, e.Encode(), ZOO_PERSISTENT_SEQUENTIAL, &created) != ZOK) return;
    const auto seq = zk::QueueSeq(created.substr(created.rfind('/') + 1));
    if (!seq) return;
    membership_.Reset({zk::Member{nonce_, self_, 0}});
    applied_ = *seq;
    published_ = 0;
    live_.clear();
    leaves_queued_.clear();
    counter_ = head_counter_ = 0;
    spdlog::info("zookeeper: no live member: founding the cluster at event {}", *seq);
    phase_ = Phase::kMember;
    ClusterEvent ev;
    ev.type = ClusterEvent::Type::kJoin;
    ev.seq = *seq;
    ev.node = self_;
    ev.is_self = true;
    ev.members = {self_};
    on_event_(ev);
    SetServing(true);
    members_dirty_ = true;
    return;
  }
  e.type = zk::Entry::Type::kJoin;
  // An ambiguous failure is retried: a second join of the same incarnation is ignored.
  if (Push(e) != ZOK) return;
  join_pushed_ = Clock::now();
  spdlog::info("zookeeper: join queued; waiting for the master's snapshot");
  const int timeout =
      session_timeout_ms_.load() > 0 ? session_timeout_ms_.load() : spec_.timeout_ms;
  join_deadline_ = Clock::now() + std::chrono::milliseconds(timeout) + 10s;
  phase_ = Phase::kAwaitSnapshot;
}

// Whether a member znode other than this node's says it has applied something (a member).
bool ZkDriver::LiveClusterExists(bool& ok) {
  ok = false;
  std::vector<std::string> names;
  if (Children(zk::kMembers, names, true) != ZOK) return true;
  for (const std::string& name : names) {
    const auto nonce = zk::NonceOfMember(name);
    if (!nonce || *nonce == nonce_) continue;
    std::string data;
    const int rc = Get(Child(zk::kMembers, name), data);
    if (rc == ZNONODE) continue;
    if (rc != ZOK) return true;
    if (json::parse(data, nullptr, false).contains("applied")) {
      ok = true;
      return true;
    }
  }
  ok = true;
  return false;
}

void ZkDriver::TryLoadSnapshot() {
  const std::string header = Child(zk::kSnapshots, nonce_);
  const int rc = Exists(header, true);
  if (rc == ZNONODE) {
    if (Clock::now() - last_full_pass_ < kFullPassEvery) return;
    last_full_pass_ = Clock::now();
    bool ok = false;
    const bool alive = LiveClusterExists(ok);
    if (ok && !alive) {
      Abandon("every member is gone before answering this node's join");
    } else if (Clock::now() > join_deadline_) {
      Abandon("no snapshot from the master in time");
    } else if (Clock::now() - join_pushed_ > kRejoinEvery) {
      // The join is ignored while an earlier incarnation of this node is still a member (its
      // leave may be queued after the join): ask again; once accepted, repeats are ignored.
      zk::Entry e;
      e.type = zk::Entry::Type::kJoin;
      e.nonce = nonce_;
      e.node = self_;
      if (Push(e) == ZOK) join_pushed_ = Clock::now();
    }
    return;
  }
  std::string data;
  if (rc != ZOK || Get(header, data) != ZOK) return;
  json h;
  try {
    h = json::parse(data);
  } catch (const std::exception&) {
    Abandon("undecodable snapshot header");
    return;
  }
  const std::string writer = h.value("writer", "");
  const uint64_t seq = h.value("seq", uint64_t(0));
  const size_t parts = h.value("parts", size_t(0));
  std::string state;
  std::vector<std::string> znodes{header};
  for (size_t i = 0; i < parts; ++i) {
    const std::string part = fmt::format("{}.{}.{}", header, writer, i);
    std::string chunk;
    if (Get(part, chunk) != ZOK) return;
    state += chunk;
    znodes.push_back(part);
  }
  zk::Membership m;
  if (!m.FromJson(h.value("members", "[]")) || m.Find(nonce_) == nullptr) {
    Abandon("bad snapshot header");
    return;
  }
  membership_ = std::move(m);
  applied_ = seq;
  published_ = 0;
  live_.clear();
  leaves_queued_.clear();
  counter_ = head_counter_ = 0;
  my_snapshot_ = std::move(znodes);
  phase_ = Phase::kMember;
  spdlog::info("zookeeper: joined at event {} with the snapshot of {} ({} bytes)", seq, writer,
               state.size());
  ClusterEvent ev;
  ev.type = ClusterEvent::Type::kJoin;
  ev.seq = seq;
  ev.node = self_;
  ev.is_self = true;
  ev.payload = std::move(state);
  for (const zk::Member& mm : membership_.members()) ev.members.push_back(mm.node);
  on_event_(ev);
  SetServing(true);
  members_dirty_ = true;
  PublishApplied(true);
}

void ZkDriver::Abandon(const std::string& why) {
  spdlog::warn("zookeeper: {}: joining again as a new incarnation", why);
  SetServing(false);
  abandoned_.push_back(nonce_);
  Delete(MyMemberPath());
  nonce_ = NewNonce();
  member_created_ = false;
  owed_.clear();
  phase_ = Phase::kJoining;
}

void ZkDriver::MemberWork() {
  const auto now = Clock::now();
  const bool full = now - last_full_pass_ > kFullPassEvery;
  if (full) {
    last_full_pass_ = now;
    queue_dirty_ = members_dirty_ = true;
  }
  ReleaseLock();
  if (queue_dirty_.exchange(false) && !ReadQueue()) {
    queue_dirty_ = true;
    return;
  }
  if (phase_ != Phase::kMember) return;
  WriteSnapshots();
  bool serving;
  {
    std::lock_guard lk(serving_mu_);
    serving = serving_;
  }
  if (!serving) members_dirty_ = true;  // confirm this node's znode before serving again
  if (members_dirty_.exchange(false) && !RefreshLive()) {
    members_dirty_ = true;
    return;
  }
  if (phase_ != Phase::kMember) return;
  if (!serving && connected_ && !expired_) {
    spdlog::info("zookeeper: session confirmed: serving again");
    SetServing(true);
  }
  DetectLeaves();
  PushOutbox();
  PublishApplied(false);
  if (now - last_gc_ > kGcEvery && FirstLive()) {
    last_gc_ = now;
    CollectGarbage();
  }
}

bool ZkDriver::ReadQueue() {
  std::vector<std::string> names;
  if (Children(zk::kQueue, names, true) != ZOK) return false;
  std::vector<std::pair<uint64_t, std::string>> todo;
  for (const std::string& name : names) {
    const auto seq = zk::QueueSeq(name);
    if (seq && *seq > applied_) todo.emplace_back(*seq, name);
  }
  std::sort(todo.begin(), todo.end());
  for (const auto& [seq, name] : todo) {
    std::string data;
    const int rc = Get(Child(zk::kQueue, name), data);
    if (rc == ZNONODE) {
      Abandon(fmt::format("event {} was collected before this node applied it", seq));
      return false;
    }
    if (rc != ZOK) return false;
    const auto e = zk::Entry::Decode(data);
    if (!e) {
      spdlog::error("zookeeper: undecodable queue entry {}", name);
      applied_ = seq;
      continue;
    }
    ApplyEntry(seq, *e);
    if (phase_ != Phase::kMember) return false;
  }
  return true;
}

void ZkDriver::ApplyEntry(uint64_t seq, const zk::Entry& e) {
  // The master takes a newcomer's snapshot here, between the events before and after its join.
  std::string state;
  bool owe = false;
  if (e.type == zk::Entry::Type::kJoin && membership_.Find(e.nonce) == nullptr) {
    for (const zk::Member& m : membership_.members()) {
      if (m.nonce == nonce_ || live_.count(m.nonce) != 0) {
        owe = m.nonce == nonce_;
        break;
      }
    }
    if (owe) state = snapshot_();
  }
  auto ev = membership_.Apply(seq, e, nonce_);
  applied_ = seq;
  if (!ev) return;
  if (ev->type == ClusterEvent::Type::kJoin) {
    members_dirty_ = true;  // its znode must be in `live_` before leaves are judged
    if (owe) owed_.push_back(OwedSnapshot{e.nonce, seq, membership_.ToJson(), std::move(state)});
  }
  if (ev->type == ClusterEvent::Type::kLeave && ev->is_self) {
    Abandon(fmt::format("the cluster removed this node at event {}", seq));
    return;
  }
  on_event_(*ev);
}

bool ZkDriver::RefreshLive() {
  std::vector<std::string> names;
  if (Children(zk::kMembers, names, true) != ZOK) return false;
  live_.clear();
  for (const std::string& name : names) {
    if (auto nonce = zk::NonceOfMember(name)) live_.insert(*nonce);
  }
  if (live_.count(nonce_) == 0) {
    Abandon("this node's member znode is gone (another sheep with the same address?)");
    return false;
  }
  return true;
}

bool ZkDriver::FirstLive() const {
  for (const zk::Member& m : membership_.members()) {
    if (live_.count(m.nonce) != 0) return m.nonce == nonce_;
  }
  return false;
}

void ZkDriver::DetectLeaves() {
  std::erase_if(leaves_queued_, [&](const std::string& n) { return !membership_.Find(n); });
  if (!FirstLive()) return;
  for (const zk::Member& m : membership_.members()) {
    if (m.nonce == nonce_ || live_.count(m.nonce) != 0 || leaves_queued_.count(m.nonce) != 0)
      continue;
    spdlog::info("zookeeper: {} is gone (its session ended): queueing its leave", m.node.id());
    zk::Entry leave;
    leave.type = zk::Entry::Type::kLeave;
    leave.nonce = m.nonce;
    if (Push(leave) != ZOK) return;
    leaves_queued_.insert(m.nonce);
  }
}

void ZkDriver::WriteSnapshots() {
  while (!owed_.empty()) {
    const OwedSnapshot& s = owed_.front();
    const std::string header = Child(zk::kSnapshots, s.nonce);
    const size_t parts = std::max<size_t>(1, (s.state.size() + kSnapshotPart - 1) / kSnapshotPart);
    std::vector<std::string> written;
    for (size_t i = 0; i < parts; ++i) {
      const std::string part = fmt::format("{}.{}.{}", header, nonce_, i);
      const std::string chunk =
          s.state.substr(std::min(s.state.size(), i * kSnapshotPart), kSnapshotPart);
      const int rc = Create(part, chunk, ZOO_PERSISTENT);
      if (rc != ZOK && rc != ZNODEEXISTS) return;
      written.push_back(part);
    }
    const json h = {{"seq", s.seq}, {"writer", nonce_}, {"parts", parts}, {"members", s.members}};
    const int rc = Create(header, h.dump(), ZOO_PERSISTENT);
    if (rc == ZNODEEXISTS) {
      std::string data;
      if (Get(header, data) == ZOK && data.find(nonce_) == std::string::npos) {
        for (const std::string& p : written) Delete(p);  // another member's snapshot won
      }
    } else if (rc != ZOK) {
      return;
    }
    spdlog::info("zookeeper: wrote the snapshot at event {} for a joining node", s.seq);
    owed_.erase(owed_.begin());
  }
}

void ZkDriver::PushOutbox() {
  for (;;) {
    std::string payload;
    {
      std::lock_guard lk(mu_);
      if (outbox_.empty()) return;
      payload = outbox_.front();
    }
    // A retry after an ambiguous failure reuses the number: the copy is applied once.
    if (head_counter_ == 0) head_counter_ = ++counter_;
    zk::Entry e;
    e.type = zk::Entry::Type::kNotify;
    e.nonce = nonce_;
    e.counter = head_counter_;
    e.payload = std::move(payload);
    if (Push(e) != ZOK) return;
    head_counter_ = 0;
    std::lock_guard lk(mu_);
    outbox_.pop_front();
  }
}

bool ZkDriver::PublishApplied(bool force) {
  const auto now = Clock::now();
  if (!force && (published_ == applied_ || now - last_publish_ < kPublishEvery)) return true;
  if (Set(MyMemberPath(), MemberData(true)) != ZOK) return false;
  published_ = applied_;
  last_publish_ = now;
  // The snapshot kept the queue after it from being collected; this znode does so from now on.
  for (const std::string& z : my_snapshot_) Delete(z);
  my_snapshot_.clear();
  return true;
}

void ZkDriver::CollectGarbage() {
  std::vector<std::string> names;
  if (Children(zk::kMembers, names, false) != ZOK) return;
  uint64_t keep_after = applied_;
  for (const std::string& name : names) {
    std::string data;
    const int rc = Get(Child(zk::kMembers, name), data);
    if (rc == ZNONODE) continue;
    if (rc != ZOK) return;
    try {
      const json j = json::parse(data);
      if (!j.contains("applied")) return;  // a node is joining: it may need what is queued now
      keep_after = std::min<uint64_t>(keep_after, j.at("applied"));
    } catch (const std::exception&) {
      return;
    }
  }
  // A snapshot for a live newcomer keeps the queue after its seq; one for a gone node is dropped.
  // Listed after the members' "applied": a snapshot written since was written by a member that
  // had not yet published an applied past it, so the minimum above already keeps its events. The
  // members are listed again to judge who is gone (a newcomer's znode predates its snapshot).
  std::vector<std::string> snaps, again;
  if (Children(zk::kSnapshots, snaps, false) != ZOK) return;
  if (Children(zk::kMembers, again, false) != ZOK) return;
  std::set<std::string> live;
  for (const std::string& name : again) {
    if (auto nonce = zk::NonceOfMember(name)) live.insert(*nonce);
  }
  for (const std::string& s : snaps) {
    const std::string owner = s.substr(0, s.find('.'));
    if (live.count(owner) == 0) {
      Delete(Child(zk::kSnapshots, s));
    } else if (s == owner) {
      std::string data;
      const int rc = Get(Child(zk::kSnapshots, s), data);
      if (rc == ZNONODE) continue;
      if (rc != ZOK) return;
      const json h = json::parse(data, nullptr, false);
      if (h.is_object() && h.contains("seq") && h["seq"].is_number_unsigned()) {
        keep_after = std::min<uint64_t>(keep_after, h["seq"].get<uint64_t>());
      }
    }
  }
  std::vector<std::string> queue;
  if (Children(zk::kQueue, queue, false) != ZOK) return;
  size_t n = 0;
  for (const std::string& name : queue) {
    const auto seq = zk::QueueSeq(name);
    if (!seq || *seq > keep_after) continue;
    // Pipelined: whatever fails is deleted in a later round.
    if (zoo_adelete(
            zh_, Child(zk::kQueue, name).c_str(), -1, [](int, const void*) {}, nullptr) != ZOK) {
      break;
    }
    if (++n == kGcBatch) break;
  }
  if (n != 0) spdlog::debug("zookeeper: collected {} events up to {}", n, keep_after);
}

}  // namespace kelpie::cluster
