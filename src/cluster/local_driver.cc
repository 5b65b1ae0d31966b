#include "cluster/local_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "cluster/zk_driver.h"
#include "proto/vdi_name.h"

namespace kelpie::cluster {

using nlohmann::json;

namespace {

constexpr uint32_t kMagic = 0x4b4c5031;  // "KLP1"
constexpr size_t kRecordHeader = 12;     // magic, length, checksum
constexpr uint32_t kMaxRecord = 64u << 20;
// How often the members' processes are checked for life.
constexpr std::chrono::milliseconds kLivenessEvery(100);

// Nonces of the driver instances alive in this process (several may share one pid in tests).
std::mutex g_live_mu;
std::set<std::string> g_live_nonces;

uint32_t Checksum(const std::string& s) { return uint32_t(proto::Fnv1a64(s)); }

// The process's start time (clock ticks since boot), or 0 if it is gone or a zombie.
uint64_t ProcessStartTime(int64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return 0;
  const char state = line[paren + 2];
  if (state == 'Z' || state == 'X' || state == 'x') return 0;  // dead, not yet reaped
  std::istringstream rest(line.substr(paren + 2));
  std::string field;
  // Field 3 is the state; the start time is field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

json NodeJson(const NodeInfo& n) {
  return {{"addr", n.addr}, {"port", n.port}, {"zone", n.zone}, {"vnodes", n.nr_vnodes}};
}

json MemberJson(const LocalDriver::Member& m) {
  return {{"node", NodeJson(m.node)}, {"pid", m.pid}, {"start", m.start_time}, {"nonce", m.nonce}};
}

LocalDriver::Member MemberFromJson(const json& j) {
  LocalDriver::Member m;
  const json& n = j.at("node");
  m.node.addr = n.at("addr");
  m.node.port = n.at("port");
  m.node.zone = n.at("zone");
  m.node.nr_vnodes = n.at("vnodes");
  m.pid = j.at("pid");
  m.start_time = j.at("start");
  m.nonce = j.at("nonce");
  return m;
}

bool PreadFull(int fd, void* buf, size_t len, uint64_t off) {
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, static_cast<char*>(buf) + got, len - got, off + got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += size_t(n);
  }
  return true;
}

}  // namespace

std::unique_ptr<MembershipDriver> MakeDriver(const std::string& spec, std::string& error) {
  if (spec == "local") return std::make_unique<LocalDriver>("/tmp/sheepdog_shm");
  if (spec.rfind("local:", 0) == 0 && spec.size() > 6)
    return std::make_unique<LocalDriver>(spec.substr(6));
  if (spec.rfind("zookeeper:", 0) == 0) {
    auto parsed = zk::ParseSpec(spec, error);
    if (!parsed) return nullptr;
    return std::make_unique<ZkDriver>(*parsed);
  }
  error = "unknown cluster driver (supported: local[:FILE], zookeeper:HOST:PORT[,...][,timeout=S])";
  return nullptr;
}

LocalDriver::LocalDriver(std::string path) : path_(std::move(path)) {}

LocalDriver::~LocalDriver() {
  stop_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lk(g_live_mu);
    g_live_nonces.erase(me_.nonce);
  }
  for (int fd : {fd_, watch_fd_, wake_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

bool LocalDriver::Start(const NodeInfo& self, SnapshotFn snapshot, EventFn on_event) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    spdlog::error("local driver: cannot open {}: {}", path_, std::strerror(errno));
    return false;
  }
  me_.node = self;
  me_.pid = ::getpid();
  me_.start_time = ProcessStartTime(me_.pid);
  std::random_device rd;
  me_.nonce = fmt::format("{:08x}{:08x}", rd(), rd());
  {
    std::lock_guard lk(g_live_mu);
    g_live_nonces.insert(me_.nonce);
  }
  snapshot_ = std::move(snapshot);
  on_event_ = std::move(on_event);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  watch_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch_fd_ >= 0 && ::inotify_add_watch(watch_fd_, path_.c_str(), IN_MODIFY) < 0) {
    ::close(watch_fd_);
    watch_fd_ = -1;
  }
  if (watch_fd_ < 0 || wake_fd_ < 0) {
    spdlog::warn("local driver: cannot watch {} ({}): polling it every 5 ms", path_,
                 std::strerror(errno));
  }
  thread_ = std::thread([this] { Loop(); });
  return true;
}

void LocalDriver::Notify(const std::string& payload) {
  {
    std::lock_guard lk(out_mu_);
    outbox_.push_back(payload);
  }
  Wake();
}

void LocalDriver::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  Wake();
  thread_.join();
  if (joined_ && !left_ && Lock()) {
    ReadNew(true);
    Append(json{{"t", "leave"}, {"m", MemberJson(me_)}}.dump());
    Unlock();
    left_ = true;
  }
}

bool LocalDriver::Lock() {
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      spdlog::error("local driver: flock {}: {}", path_, std::strerror(errno));
      return false;
    }
  }
  return true;
}

void LocalDriver::Unlock() { ::flock(fd_, LOCK_UN); }

bool LocalDriver::Alive(const Member& m) const {
  if (m.pid == ::getpid()) {
    std::lock_guard lk(g_live_mu);
    return g_live_nonces.count(m.nonce) != 0;
  }
  if (::kill(pid_t(m.pid), 0) != 0 && errno == ESRCH) return false;
  const uint64_t start = ProcessStartTime(m.pid);
  return start != 0 && start == m.start_time;
}

void LocalDriver::Append(const std::string& text) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return;
  std::string rec(kRecordHeader, '\0');
  const uint32_t hdr[3] = {kMagic, uint32_t(text.size()), Checksum(text)};
  std::memcpy(rec.data(), hdr, sizeof(hdr));
  rec += text;
  size_t done = 0;
  while (done < rec.size()) {
    const ssize_t n =
        ::pwrite(fd_, rec.data() + done, rec.size() - done, uint64_t(st.st_size) + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      spdlog::error("local driver: append to {}: {}", path_, std::strerror(errno));
      return;
    }
    done += size_t(n);
  }
  ::fdatasync(fd_);
}

void LocalDriver::ReadNew(bool locked) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return;
  const uint64_t size = uint64_t(st.st_size);
  if (size < offset_) {
    // The log was restarted by a node that found no live member; only a non-member can see this.
    offset_ = 0;
    members_.clear();
    pending_.clear();
  }
  while (offset_ + kRecordHeader <= size) {
    uint32_t hdr[3];
    if (!PreadFull(fd_, hdr, sizeof(hdr), offset_)) return;
    bool ok = hdr[0] == kMagic && hdr[1] <= kMaxRecord && offset_ + kRecordHeader + hdr[1] <= size;
    std::string text;
    if (ok) {
      text.resize(hdr[1]);
      ok = PreadFull(fd_, text.data(), text.size(), offset_ + kRecordHeader) &&
           Checksum(text) == hdr[2];
    }
    if (!ok) {
      if (locked) {
        spdlog::warn("local driver: cutting a torn record at offset {} of {}", offset_, path_);
        if (::ftruncate(fd_, off_t(offset_)) != 0)
          spdlog::error("local driver: truncate: {}", std::strerror(errno));
      }
      return;
    }
    offset_ += kRecordHeader + hdr[1];
    ApplyRecord(text);
  }
  if (locked && offset_ < size) {
    // A partial header at the tail: a writer died mid-append.
    if (::ftruncate(fd_, off_t(offset_)) != 0)
      spdlog::error("local driver: truncate: {}", std::strerror(errno));
  }
}

void LocalDriver::ApplyRecord(const std::string& text) {
  json r;
  try {
    r = json::parse(text);
  } catch (const std::exception& e) {
    spdlog::error("local driver: undecodable record: {}", e.what());
    return;
  }
  ++seq_;
  const std::string t = r.value("t", "");
  ClusterEvent ev;
  ev.seq = seq_;
  if (t == "req") {
    pending_.push_back(MemberFromJson(r.at("m")));
    return;
  }
  if (t == "accept") {
    const Member m = MemberFromJson(r.at("m"));
    std::erase(pending_, m);
    if (std::find(members_.begin(), members_.end(), m) != members_.end()) return;
    members_.push_back(m);
    ev.type = ClusterEvent::Type::kJoin;
    ev.node = m.node;
    ev.is_self = m == me_;
    if (ev.is_self) {
      joined_ = true;
      ev.payload = r.value("snapshot", "");
    }
  } else if (t == "leave") {
    const Member m = MemberFromJson(r.at("m"));
    std::erase(pending_, m);
    auto it = std::find(members_.begin(), members_.end(), m);
    if (it == members_.end()) return;
    members_.erase(it);
    ev.type = ClusterEvent::Type::kLeave;
    ev.node = m.node;
    ev.is_self = m == me_;
  } else if (t == "notify") {
    const Member m = MemberFromJson(r.at("m"));
    ev.type = ClusterEvent::Type::kNotify;
    ev.node = m.node;
    ev.is_self = m == me_;
    ev.payload = r.value("payload", "");
  } else {
    return;
  }
  if (!joined_) return;  // nothing is delivered before this node's own join
  for (const auto& mm : members_) ev.members.push_back(mm.node);
  on_event_(ev);
}

void LocalDriver::DoLockedWork() {
  if (!Lock()) return;
  ReadNew(true);
  // Members whose process is gone leave, exactly once (we replayed to the end under the lock).
  for (const Member& m : std::vector<Member>(members_)) {
    if (!(m == me_) && !Alive(m)) {
      spdlog::info("local driver: {} (pid {}) is gone", m.node.id(), m.pid);
      Append(json{{"t", "leave"}, {"m", MemberJson(m)}}.dump());
    }
  }
  ReadNew(true);
  if (!requested_) {
    requested_ = true;
    bool anyone_alive = false;
    for (const Member& m : members_) anyone_alive |= Alive(m);
    bool live_pending = false;
    for (const Member& m : pending_) live_pending |= !(m == me_) && Alive(m);
    if (!anyone_alive) {
      if (!live_pending && offset_ != 0) {
        // Nobody depends on the old log: start a fresh one.
        if (::ftruncate(fd_, 0) == 0) {
          offset_ = 0;
          members_.clear();
          pending_.clear();
        }
      }
      Append(json{{"t", "accept"}, {"m", MemberJson(me_)}, {"snapshot", ""}}.dump());
    } else {
      Append(json{{"t", "req"}, {"m", MemberJson(me_)}}.dump());
    }
    ReadNew(true);
  }
  // The master (oldest member) accepts one live join request, with a snapshot taken right here.
  if (joined_ && !members_.empty() && members_.front() == me_) {
    for (const Member& p : std::vector<Member>(pending_)) {
      if (!Alive(p)) continue;
      const std::string snap = snapshot_();
      Append(json{{"t", "accept"}, {"m", MemberJson(p)}, {"snapshot", snap}}.dump());
      ReadNew(true);
      break;
    }
  }
  std::deque<std::string> out;
  {
    std::lock_guard lk(out_mu_);
    out.swap(outbox_);
  }
  if (joined_) {
    for (const auto& payload : out)
      Append(json{{"t", "notify"}, {"m", MemberJson(me_)}, {"payload", payload}}.dump());
    ReadNew(true);
  } else if (!out.empty()) {
    std::lock_guard lk(out_mu_);
    for (auto it = out.rbegin(); it != out.rend(); ++it) outbox_.push_front(*it);
  }
  Unlock();
}

void LocalDriver::Loop() {
  auto last_check = std::chrono::steady_clock::time_point{};
  while (!stop_) {
    ReadNew(false);
    bool work = !requested_;
    {
      std::lock_guard lk(out_mu_);
      work |= joined_ && !outbox_.empty();
    }
    if (joined_ && !members_.empty() && members_.front() == me_) {
      for (const Member& p : pending_) work |= Alive(p);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check > kLivenessEvery) {
      last_check = now;
      for (const Member& m : members_) work |= !(m == me_) && !Alive(m);
    }
    if (work) DoLockedWork();
    // After work, look again soon (a second join request waits for the next pass); otherwise
    // sleep until the next liveness check unless the file changes first.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        last_check + kLivenessEvery - std::chrono::steady_clock::now());
    Wait(work ? 5 : int(std::clamp<int64_t>(left.count(), 1, kLivenessEvery.count())));
  }
}

void LocalDriver::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0 && ::write(wake_fd_, &one, sizeof one) < 0) {
    // Already signalled (the counter is far from full) or closing: nothing to do.
  }
}

void LocalDriver::Wait(int timeout_ms) {
  if (watch_fd_ < 0 || wake_fd_ < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout_ms, 5)));
    return;
  }
  pollfd fds[2] = {{watch_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  if (::poll(fds, 2, timeout_ms) <= 0) return;
  char events[4096];
  while (::read(watch_fd_, events, sizeof events) > 0) {
  }
  uint64_t count;
  if (::read(wake_fd_, &count, sizeof count) < 0) {
    // Not signalled: the file changed.
  }
}

}  // namespace kelpie::cluster
