// ZkDriver: membership across hosts on a ZooKeeper ensemble (sheepdog's "zookeeper" driver),
// through the C client library (libzookeeper-mt). The layout is in zk_membership.h; the session,
// the ZooKeeper calls and the fencing watchdog in zk_session.cc.
//
// - Every sheep incarnation holds an ephemeral member znode; the total order is one queue of
//   sequential znodes (join, leave, notify), and an event's seq is its queue sequence number.
// - Joining: under the lock, a node that sees no live member (no member znode that has applied
//   anything) founds the cluster (its own join, empty snapshot); otherwise it queues a join. The
//   join takes effect at its place in the queue; the master (the oldest live member) takes its
//   snapshot right there, between the events before and after, and writes it for the newcomer,
//   which starts from it and applies the queue after it.
// - Leaves: a graceful leave is queued by the leaver; a member znode that vanished (a session
//   timed out: the sheep died or was cut off) is turned into a queued leave by the oldest live
//   member. A duplicate leave or join is ignored where it is applied, so each takes effect once.
// - Queue entries are deleted once every member (and every pending snapshot) is past them.
// - Fencing: a member that has not heard from ZooKeeper for most of its session timeout may have
//   been removed by the others already; it reports serving=false (it must stop I/O) until it hears
//   again with its session intact. When its session expired it rejoins as a new incarnation, with
//   a new session and the master's snapshot. While ZooKeeper is briefly away (a restart within the
//   timeout) nothing changes for I/O; queued events wait and resume.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/membership.h"
#include "cluster/zk_membership.h"

typedef struct _zhandle zhandle_t;

namespace kelpie::cluster {

class ZkDriver : public MembershipDriver {
 public:
  explicit ZkDriver(zk::Spec spec);
  ~ZkDriver() override;
  bool Start(const NodeInfo& self, SnapshotFn snapshot, EventFn on_event) override;
  void Notify(const std::string& payload) override;
  void Stop() override;
  void SetServingHandler(ServingFn fn) override { serving_fn_ = std::move(fn); }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kJoining, kAwaitSnapshot, kMember };

  // A snapshot this node (the master) owes a newcomer: state at `seq`, membership after it.
  struct OwedSnapshot {
    std::string nonce;
    uint64_t seq = 0;
    std::string members;
    std::string state;
  };

  static void OnWatch(zhandle_t* zh, int type, int state, const char* path, void* ctx);
  void Loop();
  void Watchdog();
  void Wake();
  void OpenSession();
  // Starts over as a new incarnation (the old one is queued to leave).
  void Abandon(const std::string& why);
  void SetServing(bool serving);

  // ZooKeeper calls (driver thread only); each notes contact or expiry from its result.
  int Noted(int rc, Clock::time_point sent);
  int Create(const std::string& path, const std::string& data, int flags,
             std::string* created = nullptr);
  int Get(const std::string& path, std::string& out);
  int Set(const std::string& path, const std::string& data);
  int Delete(const std::string& path);
  int Exists(const std::string& path, bool watch);
  int Children(const std::string& path, std::vector<std::string>& out, bool watch);
  int Push(const zk::Entry& e);

  bool EnsureLayout();
  void TryJoin();
  void JoinUnderLock();
  void ReleaseLock();
  void TryLoadSnapshot();
  bool LiveClusterExists(bool& ok);
  void MemberWork();
  bool ReadQueue();
  void ApplyEntry(uint64_t seq, const zk::Entry& e);
  bool RefreshLive();
  bool FirstLive() const;
  void DetectLeaves();
  void WriteSnapshots();
  void PushOutbox();
  bool PublishApplied(bool force);
  void CollectGarbage();
  std::string MyMemberPath() const;
  std::string MemberData(bool with_applied) const;

  zk::Spec spec_;
  NodeInfo self_;
  SnapshotFn snapshot_;
  EventFn on_event_;
  ServingFn serving_fn_;
  std::thread thread_, watchdog_;
  bool started_ = false;

  std::mutex mu_;  // wake_, outbox_
  std::condition_variable cv_;
  bool wake_ = false;
  std::deque<std::string> outbox_;
  std::atomic<bool> stop_{false};

  // Set from ZooKeeper's threads.
  std::atomic<bool> connected_{false}, expired_{false};
  std::atomic<bool> queue_dirty_{true}, members_dirty_{true};
  std::atomic<int64_t> last_contact_{0};  // steady clock, ns: send time of the last answered call
  std::atomic<int> session_timeout_ms_{0};

  std::mutex serving_mu_;
  bool serving_ = false;
  std::atomic<Phase> phase_{Phase::kJoining};

  // Driver thread only.
  zhandle_t* zh_ = nullptr;
  bool layout_ok_ = false;
  std::string nonce_;
  bool member_created_ = false;
  bool holding_lock_ = false;
  std::vector<std::string> abandoned_;  // old incarnations of this node, to be queued to leave
  zk::Membership membership_;
  uint64_t applied_ = 0, published_ = 0;
  Clock::time_point last_publish_{}, last_gc_{}, last_full_pass_{}, join_deadline_{},
      join_pushed_{};
  std::set<std::string> live_;  // nonces that have a member znode
  std::set<std::string> leaves_queued_;
  std::vector<OwedSnapshot> owed_;
  std::vector<std::string> my_snapshot_;  // znodes of the snapshot this node joined with
  uint64_t counter_ = 0, head_counter_ = 0;
  std::vector<char> buf_;
};

}  // namespace kelpie::cluster
