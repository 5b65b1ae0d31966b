#include "sheep/sheep.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <asio/experimental/concurrent_channel.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "proto/constants.h"
#include "sheep/asio_util.h"
#include "sheep/ops.h"
#include "sheep/server.h"

namespace kelpie::sheep {

using asio::use_awaitable;

// The I/O context's concurrency hint is the number of threads that run it: with one (the
// default on a small host) handlers posted from that thread skip waking the reactor.
Sheep::Sheep(Options opts) : opts_(std::move(opts)), io_(std::max(1, opts_.threads)) {
  self_.addr = opts_.my_addr;
  self_.port = opts_.port;
  self_.nr_vnodes = opts_.vnodes;
  self_.zone = opts_.zone >= 0 ? uint32_t(opts_.zone) : cluster::DefaultZone(self_.addr);
}

Sheep::~Sheep() = default;

View Sheep::view() const {
  std::lock_guard lk(state_mu_);
  return View{state_.epoch,         state_.ring(),   state_.config.formatted,
              state_.shutting_down, serving_.load(), state_.lu_generation};
}

asio::awaitable<bool> Sheep::PollUntil(std::function<bool()> done,
                                       std::chrono::milliseconds timeout,
                                       std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer t(io_);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    t.expires_after(interval);
    co_await t.async_wait(use_awaitable);
  }
  co_return true;
}

asio::awaitable<bool> Sheep::WaitForEpoch(uint32_t epoch, std::chrono::milliseconds timeout) {
  co_return co_await PollUntil([this, epoch] { return view().epoch >= epoch; }, timeout,
                               std::chrono::milliseconds(10));
}

asio::awaitable<bool> Sheep::WaitForSeq(uint64_t seq, std::chrono::milliseconds timeout) {
  co_return co_await PollUntil([this, seq] { return applied_seq_.load() >= seq; }, timeout,
                               std::chrono::milliseconds(1));
}

asio::awaitable<bool> Sheep::WaitServing() {
  co_return co_await PollUntil([this] { return serving_.load(); }, std::chrono::seconds(10),
                               std::chrono::milliseconds(20));
}

asio::awaitable<nlohmann::json> Sheep::SubmitClusterOp(nlohmann::json op) {
  if (!serving_.load()) {
    const bool serving = co_await WaitServing();
    if (!serving) co_return nlohmann::json{{"result", proto::res::kHalt}};
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string id = fmt::format("{}#{}#{:x}", self_.id(), ++op_counter_, rng());
  op["id"] = id;
  auto ch = std::make_shared<OpResult>(io_, 1);
  {
    std::lock_guard lk(pending_mu_);
    pending_[id] = ch;
  }
  driver_->Notify(op.dump());
  asio::steady_timer t(io_, std::chrono::seconds(60));
  t.async_wait([ch](asio::error_code ec) {
    if (!ec) ch->try_send(asio::error_code{}, nlohmann::json{{"result", proto::res::kSystemError}});
  });
  auto [ec, result] = co_await ch->async_receive(kTuple);
  t.cancel();
  {
    std::lock_guard lk(pending_mu_);
    pending_.erase(id);
  }
  if (ec) co_return nlohmann::json{{"result", proto::res::kSystemError}};
  co_return result;
}

std::string Sheep::MakeSnapshot() {
  std::lock_guard lk(state_mu_);
  return state_.Serialize();
}

void Sheep::Persist() {
  if (!meta_->Put("cluster.json", state_.Serialize())) {
    spdlog::error("cannot persist the cluster state under {}", opts_.dir);
  }
}

void Sheep::OnEvent(const cluster::ClusterEvent& ev) {
  using T = cluster::ClusterEvent::Type;
  bool membership_changed = false, rejoined = false, shutdown = false;
  uint32_t epoch = 0;
  {
    std::lock_guard lk(state_mu_);
    if (ev.type == T::kJoin && ev.is_self) {
      if (!ev.payload.empty()) {
        if (!state_.Deserialize(ev.payload)) spdlog::error("bad snapshot from the master");
        rejoined = true;
      } else {
        spdlog::info("first node of the cluster: starting from the local state");
      }
    }
    if (ev.type == T::kNotify) {
      nlohmann::json op;
      try {
        op = nlohmann::json::parse(ev.payload);
      } catch (const std::exception& e) {
        spdlog::error("undecodable cluster operation from {}: {}", ev.node.id(), e.what());
        applied_seq_ = ev.seq;
        return;
      }
      nlohmann::json result = state_.ApplyOperation(op);
      result["seq"] = ev.seq;
      const std::string type = op.value("type", "");
      if (type == "format") {
        // Every sheep drops all its objects when the cluster is (re)formatted.
        for (uint64_t oid : store_->List()) store_->Remove(oid);
        for (uint64_t oid : store_->ListStale()) store_->DropStale(oid);
        spdlog::info("cluster formatted: copies {}, object size {}", state_.config.copies,
                     1ull << state_.config.block_size_shift);
      }
      shutdown = type == "shutdown";
      Persist();
      if (ev.is_self) {
        std::lock_guard plk(pending_mu_);
        auto it = pending_.find(op.value("id", ""));
        if (it != pending_.end()) it->second->try_send(asio::error_code{}, result);
      }
    } else {
      state_.ApplyMembership(ev);
      if (ev.type == T::kLeave) peers_->Forget(ev.node);
      membership_changed = true;
      epoch = state_.epoch;
      Persist();
      if (ev.is_self) {
        joined_ = true;
        joined_cv_.notify_all();
      }
    }
  }
  applied_seq_ = ev.seq;
  if (membership_changed && joined_) recovery_->OnEpoch(epoch, rejoined);
  if (shutdown) RequestShutdown();
}

void Sheep::ClientConnected(const std::string& participant) {
  std::lock_guard lk(clients_mu_);
  ++client_connections_[participant];
}

void Sheep::ClientGone(const std::string& participant) {
  {
    std::lock_guard lk(clients_mu_);
    auto it = client_connections_.find(participant);
    if (it != client_connections_.end() && --it->second > 0) return;
    if (it != client_connections_.end()) client_connections_.erase(it);
  }
  // Connections closing because the cluster shuts down do not release locks.
  if (stopping_.load() || view().shutting_down) return;
  const bool holds = WithState([&](const ClusterState& s) {
    for (const auto& [vid, l] : s.locks.locks()) {
      if (l.participants.count(participant) != 0) return true;
    }
    return false;
  });
  if (!holds) return;
  asio::co_spawn(
      io_,
      [this, participant]() -> asio::awaitable<void> {
        nlohmann::json op_req = {{"type", "drop_participant"}, {"participant", participant}};
        co_await SubmitClusterOp(std::move(op_req));
      },
      asio::detached);
}

void Sheep::RequestShutdown() {
  if (stopping_.exchange(true)) return;
  spdlog::info("shutting down");
  // Let replies in flight (e.g. the shutdown request's own) go out first.
  auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(200));
  t->async_wait([this, t](asio::error_code) { io_.stop(); });
}

int Sheep::Run() {
  store_ = std::make_unique<store::ObjectStore>(opts_.dir, opts_.capacity);
  meta_ = std::make_unique<store::MetaStore>(opts_.dir);
  peers_ = std::make_unique<PeerPool>(io_);
  recovery_ = std::make_unique<Recovery>(*this);
  if (auto text = meta_->Get("cluster.json")) {
    if (state_.Deserialize(*text)) {
      spdlog::info("loaded cluster state: epoch {}, {} VDIs", state_.epoch,
                   state_.catalog.entries().size());
    }
  }

  asio::ip::tcp::acceptor acceptor(io_);
  try {
    asio::ip::tcp::endpoint ep(asio::ip::make_address(opts_.bind_addr), opts_.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    spdlog::error("cannot listen on {}:{}: {}", opts_.bind_addr, opts_.port, e.what());
    return 1;
  }

  if (!opts_.metrics.empty()) {
    try {
      metrics_ = std::make_unique<SheepMetrics>(*this, opts_.metrics);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
    spdlog::info("metrics at http://{}/metrics", opts_.metrics);
  }

  std::string error;
  driver_ = cluster::MakeDriver(opts_.cluster_spec, error);
  if (!driver_) {
    spdlog::error("cluster driver '{}': {}", opts_.cluster_spec, error);
    return 1;
  }
  // Cut off from the cluster's coordination (its session in doubt or expired), a sheep serves no
  // I/O: the others may already go on without it.
  driver_->SetServingHandler([this](bool serving) {
    if (serving_.exchange(serving) != serving) {
      spdlog::warn("{}", serving ? "membership confirmed: serving I/O again"
                                 : "membership in doubt: refusing cluster I/O");
    }
  });
  if (!driver_->Start(
          self_, [this] { return MakeSnapshot(); },
          [this](const cluster::ClusterEvent& ev) { OnEvent(ev); })) {
    spdlog::error("cannot start the cluster driver '{}'", opts_.cluster_spec);
    return 1;
  }
  {
    std::unique_lock lk(state_mu_);
    if (!joined_cv_.wait_for(lk, std::chrono::seconds(60), [this] { return joined_; })) {
      spdlog::error("could not join the cluster within 60 s");
      driver_->Stop();
      return 1;
    }
  }
  const uint32_t epoch = view().epoch;
  spdlog::info("sheep {} serving (zone {}, {} vnodes, epoch {})", self_.id(), self_.zone,
               self_.nr_vnodes, epoch);

  asio::co_spawn(io_, Serve(*this, std::move(acceptor)), asio::detached);
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](asio::error_code ec, int sig) {
    if (!ec) {
      spdlog::info("signal {}: leaving the cluster", sig);
      RequestShutdown();
    }
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < opts_.threads; ++i) threads.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : threads) t.join();
  driver_->Stop();
  spdlog::info("sheep {} stopped", self_.id());
  return 0;
}

int Options::DefaultThreads() { return std::max(1, int(std::thread::hardware_concurrency() / 2)); }

bool Sheep::TryBusy(uint64_t oid) {
  std::lock_guard lk(busy_mu_);
  return busy_oids_.insert(oid).second;
}

void Sheep::Unbusy(uint64_t oid) {
  std::lock_guard lk(busy_mu_);
  busy_oids_.erase(oid);
}

}  // namespace kelpie::sheep
