#include "iscsi/scsi/lu_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace kelpie::scsi {

using nlohmann::json;

bool IsValidPrType(uint8_t type) {
  switch (type) {
    case pr_type::kWriteExclusive:
    case pr_type::kExclusiveAccess:
    case pr_type::kWriteExclusiveRegistrantsOnly:
    case pr_type::kExclusiveAccessRegistrantsOnly:
    case pr_type::kWriteExclusiveAllRegistrants:
    case pr_type::kExclusiveAccessAllRegistrants:
      return true;
    default:
      return false;
  }
}

bool IsAllRegistrantsType(uint8_t type) {
  return type == pr_type::kWriteExclusiveAllRegistrants ||
         type == pr_type::kExclusiveAccessAllRegistrants;
}

bool IsRegistrantsAccessType(uint8_t type) {
  return type == pr_type::kWriteExclusiveRegistrantsOnly ||
         type == pr_type::kExclusiveAccessRegistrantsOnly || IsAllRegistrantsType(type);
}

bool IsExclusiveAccessType(uint8_t type) {
  return type == pr_type::kExclusiveAccess || type == pr_type::kExclusiveAccessRegistrantsOnly ||
         type == pr_type::kExclusiveAccessAllRegistrants;
}

bool SharedState::IsReservationHolder(const std::string& nexus) const {
  if (!reservation) return false;
  if (IsAllRegistrantsType(reservation->type)) return IsRegistered(nexus);
  return reservation->holder == nexus;
}

void SharedState::QueueUnitAttention(const std::string& nexus, SenseCode code) {
  if (!nexuses.contains(nexus)) return;  // not logged in: nothing to tell
  auto& queue = unit_attentions[nexus];
  if (std::find(queue.begin(), queue.end(), code) != queue.end()) return;
  if (queue.size() >= kMaxUnitAttentionsPerNexus) {
    spdlog::debug("scsi: unit attention queue of {} full, dropping {:02x}/{:02x}", nexus, code.asc,
                  code.ascq);
    return;
  }
  queue.push_back(code);
}

void SharedState::QueueUnitAttentionForAll(SenseCode code, const std::string& except) {
  for (const auto& [nexus, seq] : nexuses) {
    if (nexus != except) QueueUnitAttention(nexus, code);
  }
}

std::optional<SenseCode> SharedState::PopUnitAttention(const std::string& nexus) {
  auto it = unit_attentions.find(nexus);
  if (it == unit_attentions.end() || it->second.empty()) return std::nullopt;
  SenseCode code = it->second.front();
  it->second.erase(it->second.begin());
  if (it->second.empty()) unit_attentions.erase(it);
  return code;
}

bool SharedState::HasUnitAttention(const std::string& nexus) const {
  auto it = unit_attentions.find(nexus);
  return it != unit_attentions.end() && !it->second.empty();
}

void SharedState::AddNexus(const std::string& nexus) {
  nexuses[nexus] = ++login_seq;
  while (nexuses.size() > kMaxNexuses) {
    auto oldest =
        std::min_element(nexuses.begin(), nexuses.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    unit_attentions.erase(oldest->first);
    nexuses.erase(oldest);
  }
}

void SharedState::RemoveNexus(const std::string& nexus) {
  nexuses.erase(nexus);
  unit_attentions.erase(nexus);
}

bool SharedState::AddPort(TargetPort port) {
  if (std::find(ports.begin(), ports.end(), port) != ports.end()) return false;
  ports.push_back(port);
  return true;
}

std::string SerializeSharedState(const SharedState& s) {
  json j;
  j["gen"] = s.pr_generation;
  json regs = json::object();
  for (const auto& [nexus, r] : s.registrations) {
    regs[nexus] = {{"key", r.key}, {"init", r.initiator}, {"isid", r.isid}, {"port", r.rel_port}};
  }
  j["regs"] = std::move(regs);
  if (s.reservation) {
    j["res"] = {{"holder", s.reservation->holder},
                {"type", s.reservation->type},
                {"scope", s.reservation->scope}};
  }
  j["aptpl"] = s.aptpl;
  j["spc2"] = s.spc2_holder;
  json uas = json::object();
  for (const auto& [nexus, codes] : s.unit_attentions) {
    json list = json::array();
    for (const SenseCode& c : codes) list.push_back({c.key, c.asc, c.ascq});
    uas[nexus] = std::move(list);
  }
  j["ua"] = std::move(uas);
  j["nexuses"] = s.nexuses;
  j["login_seq"] = s.login_seq;
  json ports = json::array();
  for (const TargetPort& p : s.ports) ports.push_back({p.tpg, p.rel_port});
  j["ports"] = std::move(ports);
  j["capacity"] = s.capacity_bytes;
  j["wce"] = s.write_cache;
  return j.dump();
}

SharedState ParseSharedState(const std::string& text) {
  SharedState s;
  if (text.empty()) return s;
  try {
    json j = json::parse(text);
    s.pr_generation = j.value("gen", 0u);
    const json regs = j.value("regs", json::object());
    for (const auto& [nexus, r] : regs.items()) {
      s.registrations[nexus] =
          Registration{r.at("key").get<uint64_t>(), r.at("init").get<std::string>(),
                       r.at("isid").get<std::string>(), r.at("port").get<uint16_t>()};
    }
    if (j.contains("res")) {
      const json& r = j["res"];
      s.reservation = PrReservation{r.at("holder").get<std::string>(), r.at("type").get<uint8_t>(),
                                    r.at("scope").get<uint8_t>()};
    }
    s.aptpl = j.value("aptpl", false);
    s.spc2_holder = j.value("spc2", std::string());
    const json uas = j.value("ua", json::object());
    for (const auto& [nexus, list] : uas.items()) {
      auto& codes = s.unit_attentions[nexus];
      for (const json& c : list) {
        codes.push_back(
            SenseCode{c.at(0).get<uint8_t>(), c.at(1).get<uint8_t>(), c.at(2).get<uint8_t>()});
      }
    }
    s.nexuses = j.value("nexuses", std::map<std::string, uint64_t>());
    s.login_seq = j.value("login_seq", uint64_t{0});
    const json ports = j.value("ports", json::array());
    for (const json& p : ports) {
      s.ports.push_back(TargetPort{p.at(0).get<uint16_t>(), p.at(1).get<uint16_t>()});
    }
    s.capacity_bytes = j.value("capacity", uint64_t{0});
    s.write_cache = j.value("wce", true);
  } catch (const std::exception& e) {
    spdlog::warn("scsi: shared LU state unparsable ({}); starting from empty state", e.what());
    return SharedState{};
  }
  return s;
}

SharedSnapshot ToSnapshot(const SharedLoad& load) {
  return SharedSnapshot{ParseSharedState(load.state), load.version, load.fence, load.cached};
}

IoStatus LoadSharedSnapshot(BlockBackend& backend, SharedSnapshot* snapshot, bool may_cache) {
  SharedLoad load;
  IoStatus st = backend.LoadShared(may_cache, &load);
  if (st != IoStatus::kOk) return st;
  *snapshot = ToSnapshot(load);
  return IoStatus::kOk;
}

IoStatus UpdateSharedState(BlockBackend& backend, SharedSnapshot* snapshot,
                           const std::function<bool(SharedState&)>& mutate) {
  // Bounded by time, not by a count of tries: under heavy contention (many workers of many
  // targets) a fixed count starves some updater. Jittered exponential backoff spreads the
  // contenders so each one eventually wins its compare-and-swap.
  constexpr auto kGiveUpAfter = std::chrono::seconds(10);
  constexpr int64_t kMaxBackoffUs = 5000;
  const auto deadline = std::chrono::steady_clock::now() + kGiveUpAfter;
  thread_local std::minstd_rand jitter(std::random_device{}());
  int attempt = 0;
  for (;; ++attempt) {
    SharedState next = snapshot->state;
    if (!mutate(next)) return IoStatus::kOk;
    uint64_t new_version = 0, fence = 0;
    IoStatus st =
        backend.StoreShared(snapshot->version, SerializeSharedState(next), &new_version, &fence);
    if (st == IoStatus::kOk) {
      snapshot->state = std::move(next);
      snapshot->version = new_version;
      snapshot->fence = fence;
      snapshot->cached = false;
      return IoStatus::kOk;
    }
    if (st != IoStatus::kConflict) return st;
    if (std::chrono::steady_clock::now() >= deadline) break;
    // Another process (or worker) changed the state first: back off, reload, redo.
    if (attempt > 0) {
      const int64_t cap = std::min<int64_t>(kMaxBackoffUs, int64_t{25} << std::min(attempt, 10));
      std::this_thread::sleep_for(std::chrono::microseconds(jitter() % (cap + 1)));
    }
    st = LoadSharedSnapshot(backend, snapshot);
    if (st != IoStatus::kOk) return st;
  }
  spdlog::warn("scsi: shared LU state update gave up after {} conflicting attempts in {} s",
               attempt + 1, kGiveUpAfter.count());
  return IoStatus::kError;
}

}  // namespace kelpie::scsi
