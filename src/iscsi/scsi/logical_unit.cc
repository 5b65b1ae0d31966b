// LogicalUnit: the per-command pipeline (decode → shared state → capacity change → unit attention
// → reservation conflict → handler) on a pool of worker threads, and the nexus/reset events.
#include "iscsi/scsi/logical_unit.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

constexpr uint8_t kOpInquiry = 0x12, kOpReportLuns = 0xA0, kOpRequestSense = 0x03;
constexpr uint8_t kTmfComplete = 0, kTmfRejected = 255;
// Passes of one command whose shared state keeps proving stale (each pass reloads it).
constexpr int kMaxPasses = 8;

// The highest set bit of `bits` (for the sense field pointer).
uint8_t HighestBit(uint8_t bits) {
  uint8_t bit = 7;
  while (!(bits & (1u << bit))) --bit;
  return bit;
}

}  // namespace

struct LogicalUnit::Impl {
  std::unique_ptr<BlockBackend> backend;
  LuConfig cfg;
  std::atomic<uint64_t> last_seen_size;

  std::mutex mu;
  std::condition_variable work_ready;
  std::deque<std::function<void()>> work;
  bool stopping = false;
  std::vector<std::thread> workers;

  Impl(std::unique_ptr<BlockBackend> b, LuConfig c)
      : backend(std::move(b)), cfg(std::move(c)), last_seen_size(backend->Size()) {
    int n = std::max(1, cfg.workers);
    for (int i = 0; i < n; ++i) workers.emplace_back([this] { WorkerLoop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    work_ready.notify_all();
    for (auto& t : workers) t.join();
  }

  // Runs queued work until stopping and the queue is drained.
  void WorkerLoop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu);
        work_ready.wait(lock, [this] { return stopping || !work.empty(); });
        if (work.empty()) return;
        job = std::move(work.front());
        work.pop_front();
      }
      job();
    }
  }

  void Submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu);
      work.push_back(std::move(job));
    }
    work_ready.notify_one();
  }

  ScsiResult Run(const ScsiCommand& cmd) {
    if (cmd.cdb.empty()) return CheckCondition(sense::kInvalidOpcode);
    const uint8_t opcode = cmd.cdb[0];
    const uint8_t service_action = cmd.cdb.size() > 1 ? (cmd.cdb[1] & 0x1F) : 0;
    const CommandInfo* info = FindCommand(opcode, service_action);
    if (!info) {
      // A known opcode with an unknown service action is an invalid field (byte 1, bits 4:0).
      if (HasServiceActions(opcode) && AnyCommandWithOpcode(opcode)) {
        return InvalidCdbField(1, 4);
      }
      return CheckCondition(sense::kInvalidOpcode);
    }
    if (cmd.lun != 0 && opcode != kOpInquiry && opcode != kOpReportLuns &&
        opcode != kOpRequestSense) {
      return CheckCondition(sense::kLunNotSupported);
    }

    std::array<uint8_t, 16> cdb{};
    if (cmd.cdb.size() < info->cdb_length) {
      spdlog::warn("scsi: {} CDB of {} bytes (needs {}), zero-padded", info->name, cmd.cdb.size(),
                   info->cdb_length);
    }
    std::copy_n(cmd.cdb.begin(), std::min<size_t>(cmd.cdb.size(), info->cdb_length), cdb.begin());
    for (uint16_t i = 1; i < info->cdb_length; ++i) {
      if (uint8_t reserved = cdb[i] & ~info->usage[i])
        return InvalidCdbField(i, HighestBit(reserved));
    }

    std::span<const uint8_t> cdb_view(cdb.data(), info->cdb_length);
    // The first pass may decide on the backend's cached shared state; the fences of its I/O tell
    // whether that state was current. When it was not (or nothing checked it), the command runs
    // again on freshly loaded state (what the stale pass already did is the same I/O again).
    for (int pass = 0; pass < kMaxPasses; ++pass) {
      if (std::optional<ScsiResult> r = RunPass(cmd, *info, cdb_view, pass == 0)) return *r;
    }
    spdlog::warn("scsi: {}: shared LU state kept changing under the command", info->name);
    return CheckCondition(sense::kInternalTargetFailure);
  }

  // One pass of a decoded command; nullopt when its shared state proved stale (run it again).
  std::optional<ScsiResult> RunPass(const ScsiCommand& cmd, const CommandInfo& info,
                                    std::span<const uint8_t> cdb, bool may_cache) {
    SharedSnapshot shared;
    if (info.UsesSharedState() &&
        LoadSharedSnapshot(*backend, &shared, may_cache) != IoStatus::kOk) {
      spdlog::warn("scsi: {}: loading shared LU state failed", info.name);
      return CheckCondition(sense::kInternalTargetFailure);
    }
    const uint64_t capacity = backend->Size();
    const std::string nexus_id = cmd.nexus.Id();

    if (info.reports_unit_attention) {
      if (capacity != last_seen_size.load() && !AnnounceCapacityChange(&shared, capacity)) {
        return CheckCondition(sense::kInternalTargetFailure);
      }
      if (shared.state.HasUnitAttention(nexus_id)) {
        std::optional<SenseCode> pending;
        IoStatus st = UpdateSharedState(*backend, &shared, [&](SharedState& s) {
          pending = s.PopUnitAttention(nexus_id);
          return pending.has_value();
        });
        if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
        if (pending) return CheckCondition(*pending);
      }
      const std::string& spc2 = shared.state.spc2_holder;
      if ((!spc2.empty() && spc2 != nexus_id && !info.allowed_under_spc2_reserve) ||
          ReservationConflicts(shared.state, nexus_id, info)) {
        if (shared.cached) return std::nullopt;  // decide that on current state
        return ReservationConflict();
      }
    }

    CommandIo io(*backend, shared);
    Request req{cmd, cdb, *backend, io, cfg, shared, capacity, nexus_id, std::nullopt};
    ScsiResult result = info.handler(req);
    if (io.stale() || (shared.cached && !io.admitted())) return std::nullopt;
    if (!result.scsi_length) {
      if (req.scsi_length) {
        result.scsi_length = req.scsi_length;
      } else if (result.status == status::kGood) {
        result.scsi_length = static_cast<uint32_t>(result.data_in.size());
      }
    }
    return result;
  }

  static bool AnyCommandWithOpcode(uint8_t opcode) {
    for (const CommandInfo& c : AllCommands()) {
      if (c.opcode == opcode) return true;
    }
    return false;
  }

  // The backend size moved (e.g. `dog vdi resize`): the first process to notice queues
  // CAPACITY DATA HAS CHANGED for every nexus.
  bool AnnounceCapacityChange(SharedSnapshot* shared, uint64_t capacity) {
    IoStatus st = UpdateSharedState(*backend, shared, [&](SharedState& s) {
      if (s.capacity_bytes == capacity) return false;
      s.capacity_bytes = capacity;
      s.QueueUnitAttentionForAll(ua::kCapacityChanged);
      return true;
    });
    if (st != IoStatus::kOk) {
      spdlog::warn("scsi: announcing capacity change to {} bytes failed", capacity);
      return false;
    }
    spdlog::info("scsi: LU {} capacity is now {} bytes", backend->LuName(), capacity);
    last_seen_size.store(capacity);
    return true;
  }

  // Loads the shared state and applies `mutate` through the CAS loop.
  bool Update(const char* what, const std::function<bool(SharedState&)>& mutate) {
    SharedSnapshot shared;
    IoStatus st = LoadSharedSnapshot(*backend, &shared);
    if (st == IoStatus::kOk) st = UpdateSharedState(*backend, &shared, mutate);
    if (st != IoStatus::kOk) spdlog::warn("scsi: {}: updating shared LU state failed", what);
    return st == IoStatus::kOk;
  }
};

LogicalUnit::LogicalUnit(std::unique_ptr<BlockBackend> backend, LuConfig cfg)
    : impl_(std::make_unique<Impl>(std::move(backend), std::move(cfg))) {}

LogicalUnit::~LogicalUnit() = default;

void LogicalUnit::Execute(ScsiCommand cmd, ScsiDone done) {
  Impl* impl = impl_.get();
  impl->Submit([impl, cmd = std::move(cmd), done = std::move(done)]() mutable {
    ScsiResult result;
    try {
      result = impl->Run(cmd);
    } catch (const std::exception& e) {
      spdlog::warn("scsi: command {:#04x} failed: {}", cmd.cdb.empty() ? 0 : cmd.cdb[0], e.what());
      result = CheckCondition(sense::kInternalTargetFailure);
    }
    done(std::move(result));
  });
}

void LogicalUnit::NexusLogin(const Nexus& n) {
  const std::string id = n.Id();
  const uint64_t capacity = impl_->backend->Size();
  const TargetPort port{impl_->cfg.tpg, impl_->cfg.rel_port};
  impl_->Update("nexus login", [&](SharedState& s) {
    s.AddNexus(id);
    s.unit_attentions.erase(id);
    s.QueueUnitAttention(id, ua::kPowerOnOrReset);
    s.AddPort(port);
    if (s.capacity_bytes == 0) s.capacity_bytes = capacity;
    return true;
  });
}

void LogicalUnit::NexusGone(const Nexus& n) {
  const std::string id = n.Id();
  impl_->Update("nexus gone", [&](SharedState& s) {
    bool changed = false;
    if (s.spc2_holder == id) {
      s.spc2_holder.clear();
      changed = true;
    }
    if (s.nexuses.contains(id) || s.unit_attentions.contains(id)) {
      s.RemoveNexus(id);
      changed = true;
    }
    return changed;
  });
}

uint8_t LogicalUnit::Reset(LuReset what, const Nexus& requester) {
  const SenseCode code =
      what == LuReset::kLogicalUnitReset ? ua::kLogicalUnitReset : ua::kPowerOnOrReset;
  spdlog::info("scsi: {} requested by {}",
               what == LuReset::kLogicalUnitReset ? "LOGICAL UNIT RESET" : "target reset",
               requester.Id());
  bool ok = impl_->Update("reset", [&](SharedState& s) {
    s.spc2_holder.clear();
    s.QueueUnitAttentionForAll(code);
    return true;
  });
  return ok ? kTmfComplete : kTmfRejected;
}

BlockBackend& LogicalUnit::backend() { return *impl_->backend; }
const LuConfig& LogicalUnit::config() const { return impl_->cfg; }

}  // namespace kelpie::scsi
