#include "client/connection_pool.h"

#include <fmt/format.h>

#include <algorithm>

#include "proto/constants.h"

namespace kelpie::client {

void ParseEndpoint(const std::string& ep, std::string* host, uint16_t* port) {
  *port = proto::kDefaultPort;
  std::string rest = ep;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) throw NetworkError("bad address " + ep);
    *host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (rest.empty()) return;
    if (rest.front() != ':') throw NetworkError("bad address " + ep);
    rest = rest.substr(1);
  } else {
    const size_t colon = rest.rfind(':');
    *host = rest.substr(0, colon);
    if (colon == std::string::npos) return;
    rest = rest.substr(colon + 1);
  }
  try {
    const unsigned long p = std::stoul(rest);
    if (p == 0 || p > 65535) throw std::out_of_range("port");
    *port = uint16_t(p);
  } catch (const std::exception&) {
    throw NetworkError("bad port in " + ep);
  }
}

ConnectionPool::ConnectionPool(std::vector<std::string> endpoints, std::string client_id,
                               int timeout_sec)
    : endpoints_(std::move(endpoints)),
      client_id_(std::move(client_id)),
      timeout_sec_(timeout_sec) {
  if (endpoints_.empty()) throw NetworkError("no sheep given");
}

ConnectionPool::ConnectionPool(SyncClient& borrowed) : borrowed_(&borrowed) {}

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::Lease(Lease&& o) noexcept
    : pool_(o.pool_), conn_(o.conn_), broken_(o.broken_) {
  o.pool_ = nullptr;
}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Return(conn_, broken_);
}

std::unique_ptr<SyncClient> ConnectionPool::Connect() {
  size_t start;
  {
    std::lock_guard lk(mu_);
    start = current_;
  }
  std::string last;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t at = (start + i) % endpoints_.size();
    try {
      std::string host;
      uint16_t port;
      ParseEndpoint(endpoints_[at], &host, &port);
      auto c = std::make_unique<SyncClient>(host, port, timeout_sec_);
      if (!client_id_.empty()) {
        std::string reply;
        const uint32_t rc = c->Admin(proto::op::kSetClientId, client_id_, &reply);
        if (rc != proto::res::kSuccess) {
          throw NetworkError(fmt::format("{} refused client id '{}': {}", endpoints_[at],
                                         client_id_, proto::ResultText(rc)));
        }
      }
      std::lock_guard lk(mu_);
      current_ = at;
      return c;
    } catch (const NetworkError& e) {
      last = e.what();
    }
  }
  throw NetworkError("no sheep reachable (" + last + ")");
}

ConnectionPool::Lease ConnectionPool::Acquire() {
  if (borrowed_ != nullptr) {
    borrowed_mu_.lock();
    return Lease(this, borrowed_);
  }
  {
    std::lock_guard lk(mu_);
    if (!idle_.empty()) {
      busy_.push_back(std::move(idle_.back()));
      idle_.pop_back();
      return Lease(this, busy_.back().get());
    }
  }
  auto c = Connect();
  std::lock_guard lk(mu_);
  busy_.push_back(std::move(c));
  return Lease(this, busy_.back().get());
}

void ConnectionPool::Return(SyncClient* conn, bool broken) {
  if (borrowed_ != nullptr) {
    borrowed_mu_.unlock();
    return;
  }
  std::lock_guard lk(mu_);
  const auto it =
      std::find_if(busy_.begin(), busy_.end(), [&](const auto& p) { return p.get() == conn; });
  if (it == busy_.end()) return;
  std::unique_ptr<SyncClient> c = std::move(*it);
  busy_.erase(it);
  if (broken) {
    // Its siblings to the same sheep are likely dead too: reconnect them all.
    idle_.clear();
    return;
  }
  idle_.push_back(std::move(c));
}

std::string ConnectionPool::endpoint() const {
  if (borrowed_ != nullptr) return borrowed_->endpoint();
  std::lock_guard lk(mu_);
  return endpoints_[current_];
}

}  // namespace kelpie::client
