#include "iscsi/kelpie_backend.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>

#include "client/connection_pool.h"
#include "client/pipelined_connection.h"
#include "client/vdi_io.h"
#include "proto/constants.h"
#include "proto/inode.h"
#include "proto/oid.h"

namespace kelpie::iscsi {

namespace res = proto::res;
using client::ConnectionPool;
using client::NetworkError;
using client::SyncClient;
using client::VdiIo;
using nlohmann::json;
using scsi::IoStatus;

namespace {

constexpr int kAdminTries = 8;
constexpr auto kSizeRefreshEvery = std::chrono::seconds(1);

// An admin exchange with a JSON body, retried on a fresh connection (next sheep) on failure.
uint32_t AdminCall(ConnectionPool& pool, uint8_t opcode, const std::string& body,
                   std::string* reply) {
  std::string last;
  const uint32_t rc = pool.Retrying([&](SyncClient& c) { return c.Admin(opcode, body, reply); },
                                    kAdminTries, [&](const NetworkError& e) { last = e.what(); });
  if (rc == res::kNetwork && !last.empty()) spdlog::error("cluster unreachable: {}", last);
  return rc;
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

class KelpieBackend final : public scsi::BlockBackend {
 public:
  KelpieBackend(const std::vector<std::string>& sheep, const std::string& vdi,
                const std::string& client_id, asio::io_context* loop)
      : pool_(sheep, client_id),
        io_(pool_, vdi, "", 0, VdiIo::Mode::kShared),
        name_(vdi),
        client_id_(client_id),
        loop_(loop) {
    if (const uint32_t rc = io_.Open(); rc != res::kSuccess) {
      throw std::runtime_error(fmt::format("cannot open VDI {}: {}", vdi, proto::ResultText(rc)));
    }
    std::string reply;
    if (const uint32_t rc = AdminCall(pool_, proto::op::kStatCluster, "", &reply);
        rc != res::kSuccess) {
      throw std::runtime_error(fmt::format("cannot read cluster info: {}", proto::ResultText(rc)));
    }
    // The LU's identity is the cluster's (its format time) and the VDI's name: the same on every
    // target, stable across snapshots (which change the working VDI's id, not its name).
    const uint64_t ctime = json::parse(reply).value("ctime", uint64_t(0));
    identity_ = Fnv1a(fmt::format("{}/{}", ctime, vdi));
    last_size_check_ = std::chrono::steady_clock::now();
  }

  ~KelpieBackend() override {
    if (const uint32_t rc = io_.Close(); rc != res::kSuccess) {
      spdlog::warn("{}: releasing the shared lock: {}", name_, proto::ResultText(rc));
    }
  }

  uint64_t Size() override {
    const auto now = std::chrono::steady_clock::now();
    bool refresh = false;
    {
      std::lock_guard lk(size_mu_);
      if (now - last_size_check_ >= kSizeRefreshEvery) {
        last_size_check_ = now;
        refresh = true;
      }
    }
    if (refresh) {
      if (const uint32_t rc = io_.RefreshHeader(); rc != res::kSuccess) {
        spdlog::warn("{}: cannot re-read the inode header: {}", name_, proto::ResultText(rc));
      }
    }
    return io_.size();
  }

  IoStatus Read(uint64_t offset, std::span<uint8_t> out, uint64_t fence) override {
    return Status("read", io_.Read(offset, out, Fence(fence)));
  }
  IoStatus Write(uint64_t offset, std::span<const uint8_t> data, uint64_t fence,
                 bool write_back) override {
    return Status("write", io_.Write(offset, data, Fence(fence), write_back));
  }
  IoStatus Discard(uint64_t offset, uint64_t len, uint64_t fence) override {
    return Status("discard", io_.Discard(offset, len, Fence(fence)));
  }
  IoStatus Flush(uint64_t fence) override { return Status("flush", io_.Flush(Fence(fence))); }

  bool CachedShared(scsi::SharedLoad* out) override { return cache_.Get(out); }
  std::optional<uint64_t> CachedSize() override {
    std::lock_guard lk(size_mu_);
    if (std::chrono::steady_clock::now() - last_size_check_ >= kSizeRefreshEvery) {
      return std::nullopt;  // a worker's Size() re-reads it
    }
    return io_.size();
  }
  bool StartRead(uint64_t offset, std::span<uint8_t> out, uint64_t fence, IoDone done) override {
    client::PipelinedConnection* conn = FastConnection();
    return conn && io_.StartRead(*conn, offset, out, Fence(fence), Finish(std::move(done)));
  }
  bool StartWrite(uint64_t offset, std::span<const uint8_t> data, uint64_t fence, bool write_back,
                  IoDone done) override {
    client::PipelinedConnection* conn = FastConnection();
    return conn &&
           io_.StartWrite(*conn, offset, data, Fence(fence), write_back, Finish(std::move(done)));
  }

  IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                           std::span<const uint8_t> data, uint64_t* miscompare_at,
                           uint64_t fence) override {
    const uint32_t rc = io_.CompareAndWrite(offset, compare, data, miscompare_at, Fence(fence));
    if (rc == res::kMiscompare) return IoStatus::kMiscompare;
    return Status("compare and write", rc);
  }

  IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                     uint64_t fence) override {
    return Status("map status", io_.MapStatus(offset, len, mapped, run, Fence(fence)));
  }

  // The shared state is cached between commands: the cluster's LU-state generation, carried as
  // the fence of every data request, makes the sheep refuse a request decided on a stale copy
  // (then the cache is dropped and the command reruns on a fresh load).
  IoStatus LoadShared(bool may_cache, scsi::SharedLoad* out) override {
    if (may_cache && CachedShared(out)) return IoStatus::kOk;
    json body = json::object();
    body["name"] = name_;
    std::string reply;
    const uint32_t rc = AdminCall(pool_, proto::op::kLuStateGet, body.dump(), &reply);
    if (rc != res::kSuccess) return Status("load shared state", rc);
    try {
      const json j = json::parse(reply);
      *out = scsi::SharedLoad{j.at("state").get<std::string>(), j.at("version").get<uint64_t>(),
                              j.at("generation").get<uint64_t>() + 1, false};
    } catch (const std::exception& e) {
      spdlog::error("{}: bad shared state reply: {}", name_, e.what());
      return IoStatus::kError;
    }
    cache_.Remember(*out);
    return IoStatus::kOk;
  }

  IoStatus StoreShared(uint64_t expect_version, const std::string& state, uint64_t* new_version,
                       uint64_t* fence) override {
    json body = json::object();
    body["name"] = name_;
    body["expect"] = expect_version;
    body["state"] = state;
    std::string reply;
    const uint32_t rc = AdminCall(pool_, proto::op::kLuStateCas, body.dump(), &reply);
    if (rc == res::kVersionConflict) return IoStatus::kConflict;
    if (rc != res::kSuccess) return Status("store shared state", rc);
    try {
      const json j = json::parse(reply);
      *new_version = j.at("version").get<uint64_t>();
      *fence = j.at("generation").get<uint64_t>() + 1;
    } catch (const std::exception& e) {
      spdlog::error("{}: bad shared state reply: {}", name_, e.what());
      return IoStatus::kError;
    }
    cache_.Remember(scsi::SharedLoad{state, *new_version, *fence, false});
    return IoStatus::kOk;
  }

  uint64_t LuIdentity() override { return identity_; }
  std::string LuName() override { return name_; }

 private:
  // Fence 0 is "none"; others carry generation + 1.
  static client::LuFence Fence(uint64_t fence) {
    if (fence == 0) return std::nullopt;
    return uint32_t(fence - 1);
  }

  // The pipelined connection of the non-blocking path: to the sheep where the shared lock was
  // last taken, made after it was taken (a connection from before a relock may reach a sheep
  // that no longer counts this process as a participant). One being replaced stays until its
  // requests are answered: failing them would look like a network failure and relock again.
  // Only on the event loop's thread; null when not there or while a relock is due.
  client::PipelinedConnection* FastConnection() {
    if (!loop_ || !loop_->get_executor().running_in_this_thread()) return nullptr;
    std::erase_if(retired_, [](const auto& c) { return c->in_flight() == 0; });
    const uint64_t epoch = io_.lock_epoch();
    const std::string endpoint = io_.lock_endpoint();
    if (endpoint.empty()) return nullptr;
    if (fast_ && (fast_epoch_ != epoch || fast_->endpoint() != endpoint)) {
      if (fast_->in_flight() > 0) retired_.push_back(std::move(fast_));
      fast_.reset();
    }
    if (!fast_) {
      fast_ = std::make_unique<client::PipelinedConnection>(loop_->get_executor(), endpoint,
                                                            client_id_);
      fast_epoch_ = epoch;
    }
    return fast_.get();
  }

  // A non-blocking I/O's code as the LU sees it: anything but success or a stale fence sends the
  // command to a worker, which retries, reloads or reports it.
  VdiIo::StartDone Finish(IoDone done) {
    return [this, done = std::move(done)](uint32_t rc) {
      if (rc == res::kSuccess) return done(IoStatus::kOk);
      spdlog::debug("{}: non-blocking I/O answered {}: to a worker", name_, proto::ResultText(rc));
      if (rc == res::kLuStateStale) return done(Status("non-blocking I/O", rc));
      done(IoStatus::kError);
    };
  }

  IoStatus Status(const char* what, uint32_t rc) {
    if (rc == res::kSuccess) return IoStatus::kOk;
    if (rc == res::kNoSpace) return IoStatus::kNoSpace;
    if (rc == res::kLuStateStale) {
      cache_.Drop();
      return IoStatus::kStale;
    }
    spdlog::error("{}: {} failed: {}", name_, what, proto::ResultText(rc));
    return IoStatus::kError;
  }

  ConnectionPool pool_;
  VdiIo io_;
  std::string name_;
  uint64_t identity_ = 0;
  std::mutex size_mu_;
  scsi::SharedLoadCache cache_;
  std::chrono::steady_clock::time_point last_size_check_;
  // The non-blocking path (event loop thread only). Declared last: closed first, while the
  // VdiIo its completions use still lives.
  std::string client_id_;
  asio::io_context* loop_;
  std::unique_ptr<client::PipelinedConnection> fast_;
  uint64_t fast_epoch_ = 0;
  std::vector<std::unique_ptr<client::PipelinedConnection>> retired_;
};

}  // namespace

std::unique_ptr<scsi::BlockBackend> OpenVdiBackend(const std::vector<std::string>& sheep,
                                                   const std::string& vdi,
                                                   const std::string& client_id,
                                                   asio::io_context* io) {
  try {
    return std::make_unique<KelpieBackend>(sheep, vdi, client_id, io);
  } catch (const NetworkError& e) {
    throw std::runtime_error(e.what());
  }
}

std::vector<std::string> ListVdis(const std::vector<std::string>& sheep) {
  try {
    ConnectionPool pool(sheep, "");
    ConnectionPool::Lease c = pool.Acquire();
    proto::Header h;
    h.opcode = proto::op::kReadVdis;
    h.data_length = proto::kNrVdis / 8;
    std::vector<uint8_t> bits;
    const uint32_t rc = c->Request(h, {}, &bits).result();
    if (rc != res::kSuccess) {
      throw std::runtime_error(fmt::format("cannot list VDIs: {}", proto::ResultText(rc)));
    }
    std::set<std::string> names;
    for (uint32_t byte = 0; byte < bits.size(); ++byte) {
      for (int bit = 0; bits[byte] != 0 && bit < 8; ++bit) {
        if (!(bits[byte] & (1u << bit))) continue;
        const uint32_t vid = byte * 8 + uint32_t(bit);
        std::vector<uint8_t> b;
        if (c->ReadObj(proto::VidToInodeOid(vid), 0, proto::kInodeHeaderSize, b) != res::kSuccess)
          continue;
        proto::Inode in;
        if (proto::DecodeInode(b, in) && !in.name.empty() && !in.is_snapshot())
          names.insert(in.name);
      }
    }
    return {names.begin(), names.end()};
  } catch (const NetworkError& e) {
    throw std::runtime_error(e.what());
  }
}

}  // namespace kelpie::iscsi
