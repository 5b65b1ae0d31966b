// ZkDriver's session and its ZooKeeper calls. Every call notes, from its result, either that the
// ensemble answered (the time it was sent: what fencing measures from) or that the session is
// gone; the watchdog stops serving when the ensemble has been silent for too long.
#include <spdlog/spdlog.h>
#include <zookeeper/zookeeper.h>

#include <cstring>

#include "cluster/zk_driver.h"

namespace kelpie::cluster {

using namespace std::chrono_literals;

namespace {

int64_t Ns(std::chrono::steady_clock::time_point t) { return t.time_since_epoch().count(); }

// The ZooKeeper client's own log lines: errors while ZooKeeper is away come several times a
// second, so they are rate-limited; the driver logs what they mean itself.
void ClientLog(const char* message) {
  static std::atomic<int64_t> last{0};
  const int64_t now = Ns(std::chrono::steady_clock::now());
  if (now - last.load() < 5'000'000'000) {
    spdlog::debug("zookeeper client: {}", message);
    return;
  }
  last = now;
  spdlog::warn("zookeeper client: {}", message);
}

}  // namespace

void ZkDriver::OnWatch(zhandle_t* zh, int type, int state, const char* path, void*) {
  auto* self = static_cast<ZkDriver*>(const_cast<void*>(zoo_get_context(zh)));
  if (self == nullptr) return;
  if (type == ZOO_SESSION_EVENT) {
    if (state == ZOO_CONNECTED_STATE) {
      self->session_timeout_ms_ = zoo_recv_timeout(zh);
      self->last_contact_ = Ns(Clock::now());
      self->connected_ = true;
      self->queue_dirty_ = self->members_dirty_ = true;
    } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
      self->connected_ = false;
      self->expired_ = true;
    } else {
      self->connected_ = false;
    }
  } else if (path != nullptr) {
    if (std::strcmp(path, zk::kQueue) == 0) self->queue_dirty_ = true;
    if (std::strcmp(path, zk::kMembers) == 0) self->members_dirty_ = true;
  }
  self->Wake();
}

void ZkDriver::OpenSession() {
  connected_ = false;
  expired_ = false;
  layout_ok_ = false;
  zh_ = zookeeper_init2(spec_.hosts.c_str(), &ZkDriver::OnWatch, spec_.timeout_ms, nullptr, this, 0,
                        &ClientLog);
}

void ZkDriver::Watchdog() {
  while (!stop_) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, 100ms, [this] { return stop_.load(); });
    }
    // The ensemble expires a session `timeout` after it last heard from it; the last answered
    // call was sent no earlier than that. Stop serving a margin before the others may act.
    const int timeout =
        session_timeout_ms_.load() > 0 ? session_timeout_ms_.load() : spec_.timeout_ms;
    const auto fence_after = std::chrono::milliseconds(timeout - timeout / 5 - 200);
    const auto silent = Clock::now() - Clock::time_point(Clock::duration(last_contact_.load()));
    bool serving;
    {
      std::lock_guard lk(serving_mu_);
      serving = serving_;
    }
    if (serving && silent > fence_after) {
      spdlog::warn(
          "zookeeper: no answer for {} ms (session timeout {} ms): not serving I/O until "
          "this node knows it is still a member",
          std::chrono::duration_cast<std::chrono::milliseconds>(silent).count(), timeout);
      SetServing(false);
    }
  }
}

int ZkDriver::Noted(int rc, Clock::time_point sent) {
  if (rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZAUTHFAILED) {
    expired_ = true;
  } else if (rc == ZOK || rc == ZNONODE || rc == ZNODEEXISTS || rc == ZNOTEMPTY ||
             rc == ZBADVERSION) {
    int64_t prev = last_contact_.load();
    while (Ns(sent) > prev && !last_contact_.compare_exchange_weak(prev, Ns(sent))) {
    }
  }
  return rc;
}

int ZkDriver::Create(const std::string& path, const std::string& data, int flags,
                     std::string* created) {
  const auto t0 = Clock::now();
  std::vector<char> name(path.size() + 64);
  const int rc = zoo_create(zh_, path.c_str(), data.data(), int(data.size()), &ZOO_OPEN_ACL_UNSAFE,
                            flags, name.data(), int(name.size()));
  if (rc == ZOK && created != nullptr) *created = name.data();
  return Noted(rc, t0);
}

int ZkDriver::Get(const std::string& path, std::string& out) {
  if (buf_.size() < 64 * 1024) buf_.resize(64 * 1024);
  for (;;) {
    const auto t0 = Clock::now();
    int len = int(buf_.size());
    struct Stat st;
    const int rc = Noted(zoo_get(zh_, path.c_str(), 0, buf_.data(), &len, &st), t0);
    if (rc != ZOK) return rc;
    if (st.dataLength > int(buf_.size())) {
      buf_.resize(size_t(st.dataLength));
      continue;
    }
    out.assign(buf_.data(), len > 0 ? size_t(len) : 0);
    return ZOK;
  }
}

int ZkDriver::Set(const std::string& path, const std::string& data) {
  const auto t0 = Clock::now();
  return Noted(zoo_set(zh_, path.c_str(), data.data(), int(data.size()), -1), t0);
}

int ZkDriver::Delete(const std::string& path) {
  const auto t0 = Clock::now();
  return Noted(zoo_delete(zh_, path.c_str(), -1), t0);
}

int ZkDriver::Exists(const std::string& path, bool watch) {
  const auto t0 = Clock::now();
  struct Stat st;
  return Noted(zoo_exists(zh_, path.c_str(), watch ? 1 : 0, &st), t0);
}

int ZkDriver::Children(const std::string& path, std::vector<std::string>& out, bool watch) {
  const auto t0 = Clock::now();
  struct String_vector v = {0, nullptr};
  const int rc = Noted(zoo_get_children(zh_, path.c_str(), watch ? 1 : 0, &v), t0);
  out.clear();
  if (rc == ZOK) {
    for (int32_t i = 0; i < v.count; ++i) out.emplace_back(v.data[i]);
    deallocate_String_vector(&v);
  }
  return rc;
}

int ZkDriver::Push(const zk::Entry& e) {
  const int rc = Create(zk::kQueuePrefix, e.Encode(), ZOO_PERSISTENT_SEQUENTIAL);
  if (rc == ZOK) queue_dirty_ = true;
  return rc;
}

}  // namespace kelpie::cluster
