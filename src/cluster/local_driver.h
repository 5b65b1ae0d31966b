// LocalDriver: membership for the sheep of one host, through a shared file (sheepdog's "local"
// driver). The file is an append-only log of records — join requests, acceptances, leaves and
// broadcast messages — appended under flock(LOCK_EX), so its order is the cluster's total order.
// Every sheep applies new records in order as soon as inotify reports the file changed (or every
// 5 ms where inotify is unavailable); a sheep idle between records costs no wake-ups but a
// liveness check of the members every 100 ms. A member is identified by pid,
// process start time and a random nonce; a member whose process is gone gets a LEAVE record
// from whichever member notices first.
#pragma once
#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/membership.h"

namespace kelpie::cluster {

class LocalDriver : public MembershipDriver {
 public:
  explicit LocalDriver(std::string path);
  ~LocalDriver() override;
  bool Start(const NodeInfo& self, SnapshotFn snapshot, EventFn on_event) override;
  void Notify(const std::string& payload) override;
  void Stop() override;

  // Identity of a process-level participant in the log.
  struct Member {
    NodeInfo node;
    int64_t pid = 0;
    uint64_t start_time = 0;
    std::string nonce;
    bool operator==(const Member& o) const { return nonce == o.nonce && pid == o.pid; }
  };

 private:
  void Loop();
  // Reads and applies every complete record after offset_. With `locked`, a torn tail (a writer
  // that died mid-append) is cut off.
  void ReadNew(bool locked);
  void ApplyRecord(const std::string& text);
  void Append(const std::string& text);
  bool Lock();
  void Unlock();
  bool Alive(const Member& m) const;
  void DoLockedWork();
  // Sleeps until the file changes, Notify or Stop wakes the loop, or timeout_ms passes.
  void Wait(int timeout_ms);
  void Wake();

  std::string path_;
  int fd_ = -1;
  int watch_fd_ = -1;  // inotify on path_ (-1: poll every 5 ms)
  int wake_fd_ = -1;   // eventfd: Notify and Stop wake the loop
  Member me_;
  SnapshotFn snapshot_;
  EventFn on_event_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool left_ = false;

  // Replay state (driver thread only).
  uint64_t offset_ = 0;
  uint64_t seq_ = 0;
  std::vector<Member> members_;  // join order
  std::vector<Member> pending_;  // join requests not yet accepted
  bool joined_ = false;
  bool requested_ = false;

  std::mutex out_mu_;
  std::deque<std::string> outbox_;  // messages to broadcast
};

}  // namespace kelpie::cluster
