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

// INVALID FIELD IN CDB for the first reserved bit set in `cdb` (its table length long), if any.
std::optional<ScsiResult> ReservedBitSet(const CommandInfo& info, std::span<const uint8_t> cdb) {
  for (uint16_t i = 1; i < info.cdb_length; ++i) {
    if (uint8_t reserved = cdb[i] & ~info.usage[i]) return InvalidCdbField(i, HighestBit(reserved));
  }
  return std::nullopt;
}

// Whether `nexus` is refused `info` by a reservation in `state` (SPC-2 RESERVE or PR).
bool Conflicts(const SharedState& state, const std::string& nexus, const CommandInfo& info) {
  const std::string& spc2 = state.spc2_holder;
  return (!spc2.empty() && spc2 != nexus && !info.allowed_under_spc2_reserve) ||
         ReservationConflicts(state, nexus, info);
}

// A command on the non-blocking path: what must live until its I/O ends.
struct StartedCommand {
  ScsiCommand cmd;
  ScsiDone done;
  std::vector<uint8_t> data_in;
  std::optional<uint32_t> scsi_length;
};

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
    // Now, while the rest of the LU lives: commands the backend still has under way end here.
    backend.reset();
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

  // False (job dropped) once the LU is stopping.
  bool Submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu);
      if (stopping) return false;
      work.push_back(std::move(job));
    }
    work_ready.notify_one();
    return true;
  }

  void RunOnWorker(ScsiCommand cmd, ScsiDone done) {
    auto job = [this, cmd = std::move(cmd), done = std::move(done)]() mutable {
      ScsiResult result;
      try {
        result = Run(cmd);
      } catch (const std::exception& e) {
        spdlog::warn("scsi: command {:#04x} failed: {}", cmd.cdb.empty() ? 0 : cmd.cdb[0],
                     e.what());
        result = CheckCondition(sense::kInternalTargetFailure);
      }
      done(std::move(result));
    };
    if (!Submit(std::move(job))) done(CheckCondition(sense::kInternalTargetFailure));
  }

  // The non-blocking path for READ and WRITE (block_backend.h): RunPass's checks on the
  // backend's cached state and size, then the I/O started on the caller's thread. Anything else
  // (a unit attention or capacity change to report, a reservation, an error to answer, a range
  // the backend cannot start) is left to the worker path, which decides it afresh; so is every
  // started I/O that does not end in kOk. Takes cmd and done only when it returns true.
  bool TryStart(ScsiCommand& cmd, ScsiDone& done) {
    try {
      return TryStartOrThrow(cmd, done);
    } catch (const std::exception& e) {  // e.g. unreadable shared state: the worker reports it
      spdlog::debug("scsi: non-blocking path declined: {}", e.what());
      return false;
    }
  }

  bool TryStartOrThrow(ScsiCommand& cmd, ScsiDone& done) {
    if (cmd.cdb.empty() || cmd.lun != 0) return false;
    const CommandInfo* info = FindCommand(cmd.cdb[0], 0);
    if (!info || (info->handler != HandleRead && info->handler != HandleWrite) ||
        cmd.cdb.size() < info->cdb_length) {
      return false;
    }
    const std::span<const uint8_t> cdb(cmd.cdb.data(), info->cdb_length);
    if (ReservedBitSet(*info, cdb)) return false;
    const std::optional<uint64_t> capacity = backend->CachedSize();
    SharedLoad load;
    if (!capacity || *capacity != last_seen_size.load() || !backend->CachedShared(&load)) {
      return false;
    }
    SharedSnapshot shared = ToSnapshot(load);
    const std::string nexus_id = cmd.nexus.Id();
    if (shared.state.HasUnitAttention(nexus_id) || Conflicts(shared.state, nexus_id, *info)) {
      return false;
    }
    CommandIo unused(*backend, shared);
    Request req{cmd, cdb, *backend, unused, cfg, shared, *capacity, nexus_id, std::nullopt};
    const bool write = info->handler == HandleWrite;
    auto plan = PlanTransfer(req, write);
    const DataTransfer* t = std::get_if<DataTransfer>(&plan);
    if (!t) return false;

    auto op = std::make_shared<StartedCommand>(
        StartedCommand{std::move(cmd), std::move(done), {}, req.scsi_length});
    auto finish = [this, op](IoStatus st) {
      if (st != IoStatus::kOk) {
        RunOnWorker(std::move(op->cmd), std::move(op->done));
        return;
      }
      ScsiResult result;
      result.data_in = std::move(op->data_in);
      result.scsi_length = op->scsi_length;
      op->done(std::move(result));
    };
    bool started;
    if (write) {
      started = backend->StartWrite(t->offset, std::span(op->cmd.data_out).first(t->bytes),
                                    shared.fence, t->write_back, std::move(finish));
    } else {
      op->data_in.resize(t->bytes);
      started = backend->StartRead(t->offset, op->data_in, shared.fence, std::move(finish));
    }
    if (!started) {
      cmd = std::move(op->cmd);
      done = std::move(op->done);
    }
    return started;
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
    std::span<const uint8_t> cdb_view(cdb.data(), info->cdb_length);
    if (auto invalid = ReservedBitSet(*info, cdb_view)) return *invalid;

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
      if (Conflicts(shared.state, nexus_id, info)) {
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
  if (impl_->TryStart(cmd, done)) return;
  impl_->RunOnWorker(std::move(cmd), std::move(done));
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
