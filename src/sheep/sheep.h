// Sheep: one storage daemon. It owns the object store, the replicated ClusterState, the membership
// driver, the listener and the pool of connections to other sheep, and runs every request as a
// coroutine on a small pool of threads. Request handlers (ops.cc and the files it names) reach the
// rest of the daemon through this class.
#pragma once
#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "cluster/membership.h"
#include "sheep/cluster_state.h"
#include "sheep/peer_pool.h"
#include "sheep/recovery.h"
#include "sheep/request.h"
#include "sheep/sheep_metrics.h"
#include "store/object_store.h"

namespace kelpie::sheep {

struct Options {
  std::string dir;
  std::string bind_addr = "0.0.0.0";
  std::string my_addr;  // address announced to the cluster (-y); default: bind addr or 127.0.0.1
  uint16_t port = 7000;
  int64_t zone = -1;  // -1: derived from my_addr
  uint16_t vnodes = 128;
  std::string cluster_spec = "local";
  std::string log_dir;
  std::string log_level = "info";
  bool foreground = false;
  // Threads running requests. Few is fast: a request's work is short and non-blocking but for
  // the store's page-cache I/O, and every extra thread costs wake-ups on a shared machine (a
  // 2-core host serving 3 sheep and a target measured 4 threads at 0.6x the IOPS of 1).
  int threads = DefaultThreads();
  static int DefaultThreads();  // half the CPUs, at least 1
  std::string metrics;          // --metrics ADDR:PORT: serve Prometheus metrics there ("" = off)
  uint64_t capacity = 0;        // --capacity: bytes the object store may use; 0: the disk's size
  // Limits on what clients may hold (server.cc). A connection over max_connections is closed at
  // once; a request whose first byte arrived must be complete (header and data) within
  // header_timeout_s, else its connection is dropped (slow-loris peers); a connection silent for
  // idle_timeout_s is closed (0: never — hypervisors and peer pools keep idle connections open);
  // a connection reads no further request data while its requests in flight hold
  // max_inflight_bytes (request plus reply data).
  size_t max_connections = 4096;
  int header_timeout_s = 30;
  int idle_timeout_s = 0;
  size_t max_inflight_bytes = 64u << 20;
};

// A consistent copy of what a request needs to know about the cluster.
struct View {
  uint32_t epoch = 0;
  std::shared_ptr<const cluster::Ring> ring;
  bool formatted = false;
  bool shutting_down = false;
  bool serving = true;         // false while the membership driver is unsure this sheep is a member
  uint64_t lu_generation = 0;  // ClusterState::lu_generation
};

class Sheep {
 public:
  explicit Sheep(Options opts);
  ~Sheep();
  // Joins the cluster, serves until shutdown; returns the exit code.
  int Run();

  asio::io_context& io() { return io_; }
  store::ObjectStore& store() { return *store_; }
  PeerPool& peers() { return *peers_; }
  Recovery& recovery() { return *recovery_; }
  const cluster::NodeInfo& self() const { return self_; }
  const Options& options() const { return opts_; }

  View view() const;
  // Runs `fn` with the cluster state locked (read-only use).
  template <typename Fn>
  auto WithState(Fn&& fn) const {
    std::lock_guard lk(state_mu_);
    return fn(state_);
  }
  // Waits (bounded) until this sheep's epoch is at least `epoch`.
  asio::awaitable<bool> WaitForEpoch(uint32_t epoch, std::chrono::milliseconds timeout);
  // Waits (bounded) until this sheep may serve cluster I/O again (see View::serving); false if
  // it still may not. I/O that finds it not serving waits here, then fails with HALT.
  asio::awaitable<bool> WaitServing();

  // Broadcasts an ordered cluster operation and waits until it has been applied here; returns the
  // operation's result object ({"result": code, ...}).
  asio::awaitable<nlohmann::json> SubmitClusterOp(nlohmann::json op);

  // Position in the membership driver's total order of the last event applied here; and a
  // bounded wait until this sheep has applied the event at `seq`.
  uint64_t applied_seq() const { return applied_seq_.load(); }
  asio::awaitable<bool> WaitForSeq(uint64_t seq, std::chrono::milliseconds timeout);

  // Dispatches a request through the op table (used for connections and for local shortcuts).
  asio::awaitable<Reply> Dispatch(Request req, const ClientInfo& client);

  // A connection of client `participant` opened / closed. When its last connection closes the
  // client is gone: its locks are released (an ordered drop_participant operation).
  void ClientConnected(const std::string& participant);
  void ClientGone(const std::string& participant);

  void RequestShutdown();

  // Objects whose COMPARE AND WRITE this sheep is serializing (it holds their first copy).
  // TryBusy marks oid busy unless it already is; Unbusy clears it.
  bool TryBusy(uint64_t oid);
  void Unbusy(uint64_t oid);

 private:
  void OnEvent(const cluster::ClusterEvent& ev);
  // Polls `done` every `interval` until it holds (true) or `timeout` passes (false).
  asio::awaitable<bool> PollUntil(std::function<bool()> done, std::chrono::milliseconds timeout,
                                  std::chrono::milliseconds interval);
  std::string MakeSnapshot();
  void Persist();
  asio::awaitable<void> Listen(asio::ip::tcp::acceptor acceptor);

  Options opts_;
  cluster::NodeInfo self_;
  asio::io_context io_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<store::MetaStore> meta_;
  std::unique_ptr<cluster::MembershipDriver> driver_;
  std::unique_ptr<PeerPool> peers_;
  std::unique_ptr<Recovery> recovery_;

  mutable std::mutex state_mu_;
  ClusterState state_;
  bool joined_ = false;
  std::condition_variable joined_cv_;

  // Ordered operations this sheep submitted, waiting to be applied.
  using OpResult = asio::experimental::concurrent_channel<void(asio::error_code, nlohmann::json)>;
  std::mutex pending_mu_;
  std::map<std::string, std::shared_ptr<OpResult>> pending_;
  std::atomic<uint64_t> op_counter_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<bool> serving_{true};
  std::mutex clients_mu_;
  std::map<std::string, int> client_connections_;
  std::mutex busy_mu_;
  std::set<uint64_t> busy_oids_;
  // Last, so its listener thread stops before anything it reads is destroyed; null without
  // --metrics (Dispatch then counts nothing).
  std::unique_ptr<SheepMetrics> metrics_;
};

}  // namespace kelpie::sheep
