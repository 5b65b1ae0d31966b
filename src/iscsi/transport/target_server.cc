#include "iscsi/transport/target_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>

#include "iscsi/transport/connection.h"

namespace kelpie::iscsi {

namespace {
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

std::string SessionKey(const std::string& initiator, const std::string& isid,
                       const std::string& target) {
  return initiator + '\0' + isid + '\0' + target;
}

bool IsWildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host.empty();
}
}  // namespace

std::optional<Portal> ParsePortal(const std::string& spec) {
  std::string host, port;
  if (!spec.empty() && spec[0] == '[') {
    const size_t close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':')
      return std::nullopt;
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  const auto n = ParseNumber(port);
  if (host.empty() || !n || *n == 0 || *n > 65535 || port.rfind("0x", 0) == 0) return std::nullopt;
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return Portal{host, uint16_t(*n)};
}

TargetServer::TargetServer(asio::io_context& io, ServerConfig config)
    : io_(io), config_(std::move(config)), pool_(size_t(std::max(1, config_.blocking_threads))) {
  config_.login.target_exists = [this](const std::string& iqn) {
    return FindTarget(iqn) != nullptr;
  };
}

TargetServer::~TargetServer() { pool_.join(); }

void TargetServer::AddTarget(const std::string& iqn, std::shared_ptr<scsi::LogicalUnit> lu) {
  std::lock_guard lock(targets_mu_);
  targets_[iqn] = std::move(lu);
}

void TargetServer::Listen() {
  for (const Portal& p : config_.portals) {
    auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(io_);
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(p.host), p.port);
    asio::error_code ec;
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, fmt::format("cannot listen on {}:{}", p.host, p.port));
    spdlog::info("iscsi: listening on {}:{}", p.host, p.port);
    acceptors_.push_back(acceptor);
    asio::co_spawn(io_, Accept(acceptor), [p](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("iscsi: accepting on {}:{} stopped: {}", p.host, p.port, ex.what());
      }
    });
  }
}

asio::awaitable<void> TargetServer::Accept(std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor->async_accept(kTuple);
    if (stopping_) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      spdlog::warn("iscsi: accept failed: {}", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (connections_.size() >= config_.max_connections) {
      asio::error_code ignored;
      const auto remote = socket.remote_endpoint(ignored);
      spdlog::warn("iscsi {}:{}: refusing connection: {} connections open (--max-connections)",
                   remote.address().to_string(), remote.port(), connections_.size());
      socket.close(ignored);
      continue;
    }
    auto conn = std::make_shared<Connection>(*this, std::move(socket));
    spdlog::debug("iscsi {}: connected", conn->peer());
    connections_[conn.get()] = conn;
    UpdateCountGauges();
    conn->Start();
  }
}

void TargetServer::Shutdown() {
  stopping_ = true;
  for (auto& a : acceptors_) {
    asio::error_code ec;
    a->close(ec);
  }
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [ptr, weak] : connections_)
    if (auto c = weak.lock()) live.push_back(c);
  for (auto& c : live) c->Close("target shutting down");
}

void TargetServer::WaitForBlockingWork() { pool_.join(); }

void TargetServer::ConnectionEnded(const Connection* c) {
  connections_.erase(c);
  UpdateCountGauges();
}

void TargetServer::UpdateCountGauges() {
  if (!config_.stats) return;
  config_.stats->sessions->Set(int64_t(sessions_.size()));
  config_.stats->connections->Set(int64_t(connections_.size()));
}

std::shared_ptr<scsi::LogicalUnit> TargetServer::FindTarget(const std::string& iqn) {
  std::lock_guard lock(targets_mu_);
  auto it = targets_.find(iqn);
  return it == targets_.end() ? nullptr : it->second;
}

void TargetServer::Resolve(const std::string& wanted) {
  if (!resolver_) return;
  std::set<std::string> known;
  {
    std::lock_guard lock(targets_mu_);
    for (const auto& [name, lu] : targets_) known.insert(name);
  }
  auto found = resolver_(wanted, known);
  std::lock_guard lock(targets_mu_);
  for (auto& [name, lu] : found) {
    if (targets_.emplace(name, lu).second) spdlog::info("iscsi: target {} added", name);
  }
}

bool TargetServer::ResolveTarget(const std::string& iqn) {
  if (FindTarget(iqn)) return true;
  try {
    Resolve(iqn);
  } catch (const std::exception& e) {
    spdlog::warn("iscsi: cannot resolve target {}: {}", iqn, e.what());
  }
  return FindTarget(iqn) != nullptr;
}

void TargetServer::RefreshTargets() {
  try {
    Resolve("");
  } catch (const std::exception& e) {
    spdlog::warn("iscsi: cannot refresh the target list: {}", e.what());
  }
}

KeyValues TargetServer::SendTargets(const std::string& which, const std::string& current_target,
                                    const asio::ip::tcp::endpoint& local) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(targets_mu_);
    if (which == "All") {
      for (const auto& [name, lu] : targets_) names.push_back(name);
    } else {
      const std::string& name = which.empty() ? current_target : which;
      if (targets_.count(name)) names.push_back(name);
    }
  }
  KeyValues kv;
  const std::string tag = std::to_string(config_.login.portal_group_tag);
  for (const std::string& name : names) {
    kv.emplace_back("TargetName", name);
    for (const Portal& p : config_.portals) {
      asio::ip::address addr;
      if (IsWildcard(p.host)) {
        addr = local.address();
      } else {
        addr = asio::ip::make_address(p.host);
      }
      if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
      const std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
      kv.emplace_back("TargetAddress", fmt::format("{}:{},{}", host, p.port, tag));
    }
  }
  return kv;
}

TargetServer::Admission TargetServer::AdmitSession(const Login& login,
                                                   std::shared_ptr<scsi::LogicalUnit> lu) {
  Admission adm;
  const std::string key = SessionKey(login.initiator_name(), login.isid_hex(), login.target_name());
  auto it = sessions_.find(key);
  std::shared_ptr<Session> old = it == sessions_.end() ? nullptr : it->second.lock();
  if (login.requested_tsih() != 0) {
    if (old && old->id().tsih == login.requested_tsih()) {
      adm.status = login_status::kTooManyConnections;
      adm.why = "a second connection to a session (MaxConnections=1)";
    } else {
      adm.status = login_status::kSessionDoesNotExist;
      adm.why = fmt::format("no session with TSIH {}", login.requested_tsih());
    }
    return adm;
  }
  if (!login.discovery() && !lu) {
    adm.status = login_status::kTargetNotFound;
    adm.why = fmt::format("target {} went away", login.target_name());
    return adm;
  }
  if (old) {
    spdlog::info("iscsi: {} ISID {} logs in again: reinstating (closing TSIH {})",
                 login.initiator_name(), login.isid_hex(), old->id().tsih);
    old->nexus_handed_over = !login.discovery();
    adm.reinstated = !login.discovery();
    old->Close("session reinstated by a new login");
  }
  std::set<uint16_t> in_use;
  for (auto& [k, w] : sessions_)
    if (auto s = w.lock()) in_use.insert(s->id().tsih);
  while (next_tsih_ == 0 || in_use.count(next_tsih_)) ++next_tsih_;
  SessionIdentity id;
  id.initiator_name = login.initiator_name();
  id.isid = login.isid_hex();
  id.tsih = next_tsih_++;
  id.target_name = login.target_name();
  id.discovery = login.discovery();
  adm.session =
      std::make_shared<Session>(std::move(id), login.params(), std::move(lu), config_.rel_port,
                                login.exp_cmdsn(), config_.login.cmdsn_window);
  sessions_[key] = adm.session;
  UpdateCountGauges();
  return adm;
}

void TargetServer::SessionEnded(const Session* session) {
  if (!session) return;
  const auto& id = session->id();
  auto it = sessions_.find(SessionKey(id.initiator_name, id.isid, id.target_name));
  if (it == sessions_.end()) return;
  auto s = it->second.lock();
  if (!s || s.get() == session) sessions_.erase(it);
  UpdateCountGauges();
}

std::vector<std::shared_ptr<Session>> TargetServer::SessionsOf(const scsi::LogicalUnit* lu) {
  std::vector<std::shared_ptr<Session>> out;
  for (auto& [k, w] : sessions_)
    if (auto s = w.lock(); s && lu && s->lu().get() == lu) out.push_back(s);
  return out;
}

}  // namespace kelpie::iscsi
