// SPC-4 persistent reservations (PERSISTENT RESERVE IN/OUT) and SPC-2 RESERVE/RELEASE(6/10),
// over the state shared by every target process of the LU. Registrations are per I_T nexus;
// SPEC_I_PT, ALL_TG_PT and REGISTER AND MOVE are not supported. APTPL is accepted: the state lives
// in the cluster, so registrations survive target restarts regardless.
#include <spdlog/spdlog.h>

#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

namespace prin {
constexpr uint8_t kReadKeys = 0, kReadReservation = 1, kReportCapabilities = 2, kReadFullStatus = 3;
}
namespace prout {
constexpr uint8_t kRegister = 0, kReserve = 1, kRelease = 2, kClear = 3, kPreempt = 4,
                  kPreemptAndAbort = 5, kRegisterAndIgnore = 6;
}
constexpr uint32_t kProutParamLength = 24;
constexpr uint8_t kSpecIPt = 0x08, kAllTgPt = 0x04, kAptpl = 0x01;

// What a PR OUT service action decided (it may run several times in the CAS loop).
struct Outcome {
  enum Kind { kGood, kConflict, kInvalidRelease, kInvalidParam } kind = kGood;
  uint16_t param_byte = 0;
  ScsiResult ToResult() const {
    switch (kind) {
      case kConflict:
        return ReservationConflict();
      case kInvalidRelease:
        return CheckCondition(sense::kInvalidReleaseOfPr);
      case kInvalidParam:
        return InvalidParamField(param_byte);
      default:
        return Good();
    }
  }
};

// The ids of every registered nexus except `except`.
std::vector<std::string> OtherRegistrants(const SharedState& s, const std::string& except) {
  std::vector<std::string> ids;
  for (const auto& [id, reg] : s.registrations) {
    if (id != except) ids.push_back(id);
  }
  return ids;
}

// Removes a registration and what depends on it: a reservation held by that nexus ends (RO types
// tell the remaining registrants), an all-registrants reservation ends with its last registrant.
void Unregister(SharedState& s, const std::string& nexus) {
  s.registrations.erase(nexus);
  if (!s.reservation) return;
  const uint8_t type = s.reservation->type;
  if (IsAllRegistrantsType(type)) {
    if (s.registrations.empty()) s.reservation.reset();
  } else if (s.reservation->holder == nexus) {
    s.reservation.reset();
    if (IsRegistrantsAccessType(type)) {
      for (const std::string& id : OtherRegistrants(s, nexus)) {
        s.QueueUnitAttention(id, ua::kReservationsReleased);
      }
    }
  }
}

// Removes every registration (but `self`'s) holding `key`; the removed nexuses get REGISTRATIONS
// PREEMPTED. Returns whether any registration (including self's) had the key.
bool PreemptRegistrations(SharedState& s, uint64_t key, const std::string& self) {
  bool matched = false;
  std::vector<std::string> victims;
  for (const auto& [id, reg] : s.registrations) {
    if (reg.key != key) continue;
    matched = true;
    if (id != self) victims.push_back(id);
  }
  for (const std::string& id : victims) {
    Unregister(s, id);
    s.QueueUnitAttention(id, ua::kRegistrationsPreempted);
  }
  return matched;
}

// PREEMPT / PREEMPT AND ABORT (SPC-4 §5.9.11.4). Task abort of preempted nexuses is left to
// the initiators' own error handling.
Outcome Preempt(SharedState& s, const std::string& self, uint64_t sa_key, uint8_t type,
                uint8_t scope) {
  auto& res = s.reservation;
  const bool all_registrants = res && IsAllRegistrantsType(res->type);
  const bool holder_key_matches = res && !all_registrants &&
                                  s.registrations.contains(res->holder) &&
                                  s.registrations.at(res->holder).key == sa_key;
  if (all_registrants && sa_key == 0) {
    // Preempting an all-registrants reservation: everyone else loses its registration and the
    // preempting nexus holds a new reservation.
    for (const std::string& id : OtherRegistrants(s, self)) {
      s.registrations.erase(id);
      s.QueueUnitAttention(id, ua::kRegistrationsPreempted);
    }
    res = PrReservation{IsAllRegistrantsType(type) ? "" : self, type, scope};
  } else if (holder_key_matches) {
    const PrReservation old = *res;
    res.reset();  // released first so that removing the holder's registration does not notify
    PreemptRegistrations(s, sa_key, self);
    res = PrReservation{IsAllRegistrantsType(type) ? "" : self, type, scope};
    if (old.type != type || old.scope != scope) {
      for (const std::string& id : OtherRegistrants(s, self)) {
        s.QueueUnitAttention(id, ua::kReservationsReleased);
      }
    }
  } else {
    // No reservation to take over: only registrations are preempted.
    if (sa_key == 0) return Outcome{Outcome::kInvalidParam, 8};
    if (!PreemptRegistrations(s, sa_key, self)) return Outcome{Outcome::kConflict};
  }
  ++s.pr_generation;
  return Outcome{};
}

// iSCSI TransportID, format 01b (name + ",i,0x" + ISID), NUL-terminated, padded to 4 bytes.
std::vector<uint8_t> IscsiTransportId(const Registration& reg) {
  std::string name = reg.initiator + ",i,0x" + reg.isid;
  std::vector<uint8_t> t(4, 0);
  t[0] = 0x40 | 0x05;  // FORMAT CODE 01b, PROTOCOL IDENTIFIER iSCSI
  t.insert(t.end(), name.begin(), name.end());
  t.push_back(0);
  t.resize(std::max<size_t>(24, (t.size() + 3) / 4 * 4), 0);
  PutBe16(t, 2, t.size() - 4);
  return t;
}

std::vector<uint8_t> ReadFullStatus(const SharedState& s) {
  std::vector<uint8_t> d(8, 0);
  PutBe32(d, 0, s.pr_generation);
  for (const auto& [id, reg] : s.registrations) {
    const size_t off = d.size();
    d.resize(off + 24, 0);
    PutBe64(d, off, reg.key);
    if (s.IsReservationHolder(id)) {
      d[off + 12] = 0x01;  // R_HOLDER
      d[off + 13] = static_cast<uint8_t>(s.reservation->scope << 4 | s.reservation->type);
    }
    PutBe16(d, off + 18, reg.rel_port);
    std::vector<uint8_t> transport_id = IscsiTransportId(reg);
    PutBe32(d, off + 20, transport_id.size());
    d.insert(d.end(), transport_id.begin(), transport_id.end());
  }
  PutBe32(d, 4, d.size() - 8);
  return d;
}

}  // namespace

bool ReservationConflicts(const SharedState& s, const std::string& nexus, const CommandInfo& info) {
  if (!s.reservation || info.pr_access == PrAccess::kAllowed) return false;
  if (s.IsReservationHolder(nexus)) return false;
  const uint8_t type = s.reservation->type;
  if (IsRegistrantsAccessType(type) && s.IsRegistered(nexus)) return false;
  if (info.pr_access == PrAccess::kRead) return IsExclusiveAccessType(type);
  return true;
}

ScsiResult HandlePersistentReserveIn(Request& req) {
  const uint8_t sa = req.cdb[1] & 0x1F;
  const uint16_t alloc = GetBe16(req.cdb, 7);
  const SharedState& s = req.shared.state;
  std::vector<uint8_t> d(8, 0);
  PutBe32(d, 0, s.pr_generation);
  switch (sa) {
    case prin::kReadKeys:
      for (const auto& [id, reg] : s.registrations) AppendBe(d, 8, reg.key);
      PutBe32(d, 4, d.size() - 8);  // the full list length, even when cut by the allocation
      break;
    case prin::kReadReservation:
      if (s.reservation) {
        d.resize(24, 0);
        PutBe32(d, 4, 16);
        const bool all = IsAllRegistrantsType(s.reservation->type);
        auto holder = s.registrations.find(s.reservation->holder);
        PutBe64(d, 8, all || holder == s.registrations.end() ? 0 : holder->second.key);
        d[21] = static_cast<uint8_t>(s.reservation->scope << 4 | s.reservation->type);
      }
      break;
    case prin::kReportCapabilities:
      d.assign(8, 0);
      PutBe16(d, 0, 8);
      d[2] = 0x01;                         // PTPL_C
      d[3] = 0x80 | (s.aptpl ? 0x01 : 0);  // TMV, PTPL_A
      d[4] = 0xEA;                         // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
      d[5] = 0x01;                         // EX_AC_AR
      break;
    case prin::kReadFullStatus:
      d = ReadFullStatus(s);
      break;
    default:
      return InvalidCdbField(1, 4);
  }
  return DataIn(std::move(d), alloc);
}

ScsiResult HandlePersistentReserveOut(Request& req) {
  const uint8_t sa = req.cdb[1] & 0x1F;
  const uint8_t scope = req.cdb[2] >> 4;
  const uint8_t type = req.cdb[2] & 0x0F;
  const uint32_t param_length = GetBe32(req.cdb, 5);
  req.scsi_length = param_length;
  if (param_length != kProutParamLength || req.cmd.data_out.size() < kProutParamLength) {
    return CheckCondition(sense::kParamListLengthError);
  }
  const std::span<const uint8_t> p(req.cmd.data_out);
  const uint64_t key = GetBe64(p, 0);
  const uint64_t sa_key = GetBe64(p, 8);
  const uint8_t flags = p[20];
  if (flags & kSpecIPt) return InvalidParamField(20, 3);
  if (flags & kAllTgPt) return InvalidParamField(20, 2);
  const bool typed =
      sa == prout::kReserve || sa == prout::kPreempt || sa == prout::kPreemptAndAbort;
  if (typed && scope != 0) return InvalidCdbField(2, 7);
  if (typed && !IsValidPrType(type)) return InvalidCdbField(2, 3);

  const std::string& self = req.nexus_id;
  const Nexus& nexus = req.cmd.nexus;
  Outcome outcome;
  IoStatus st = UpdateSharedState(req.backend, &req.shared, [&](SharedState& s) {
    outcome = Outcome{};
    const auto reg = s.registrations.find(self);
    const bool registered = reg != s.registrations.end();
    if (sa == prout::kRegister || sa == prout::kRegisterAndIgnore) {
      if (sa == prout::kRegister && key != (registered ? reg->second.key : 0)) {
        outcome.kind = Outcome::kConflict;
        return false;
      }
      if (sa_key == 0) {
        if (!registered) return false;  // unregistering an unregistered nexus: no-op
        Unregister(s, self);
      } else {
        s.registrations[self] = Registration{sa_key, nexus.initiator, nexus.isid, nexus.rel_port};
        s.aptpl = flags & kAptpl;
      }
      ++s.pr_generation;
      return true;
    }
    if (!registered || reg->second.key != key) {
      outcome.kind = Outcome::kConflict;
      return false;
    }
    switch (sa) {
      case prout::kReserve:
        if (s.reservation) {
          const bool same = s.IsReservationHolder(self) && s.reservation->type == type &&
                            s.reservation->scope == scope;
          if (!same) outcome.kind = Outcome::kConflict;
          return false;
        }
        s.reservation = PrReservation{IsAllRegistrantsType(type) ? "" : self, type, scope};
        return true;
      case prout::kRelease: {
        if (!s.reservation || !s.IsReservationHolder(self)) return false;
        if (s.reservation->type != type || s.reservation->scope != scope) {
          outcome.kind = Outcome::kInvalidRelease;
          return false;
        }
        const uint8_t released = s.reservation->type;
        s.reservation.reset();
        if (IsRegistrantsAccessType(released)) {
          for (const std::string& id : OtherRegistrants(s, self)) {
            s.QueueUnitAttention(id, ua::kReservationsReleased);
          }
        }
        return true;
      }
      case prout::kClear:
        for (const std::string& id : OtherRegistrants(s, self)) {
          s.QueueUnitAttention(id, ua::kReservationsPreempted);
        }
        s.registrations.clear();
        s.reservation.reset();
        ++s.pr_generation;
        return true;
      case prout::kPreempt:
      case prout::kPreemptAndAbort:
        outcome = Preempt(s, self, sa_key, type, scope);
        return outcome.kind == Outcome::kGood;
      default:
        outcome = Outcome{Outcome::kInvalidParam, 0};
        return false;
    }
  });
  if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
  return outcome.ToResult();
}

ScsiResult HandleReserve(Request& req) {
  bool conflict = false;
  IoStatus st = UpdateSharedState(req.backend, &req.shared, [&](SharedState& s) {
    // Persistent reservations (any registration) supersede RESERVE/RELEASE (SPC-4 §5.9.3, CRH=0).
    conflict = !s.registrations.empty() || s.reservation ||
               (!s.spc2_holder.empty() && s.spc2_holder != req.nexus_id);
    if (conflict || s.spc2_holder == req.nexus_id) return false;
    s.spc2_holder = req.nexus_id;
    return true;
  });
  if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
  return conflict ? ReservationConflict() : Good();
}

ScsiResult HandleRelease(Request& req) {
  bool conflict = false;
  IoStatus st = UpdateSharedState(req.backend, &req.shared, [&](SharedState& s) {
    conflict = !s.registrations.empty() || s.reservation;
    if (conflict || s.spc2_holder != req.nexus_id) return false;  // non-holder: no-op
    s.spc2_holder.clear();
    return true;
  });
  if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
  return conflict ? ReservationConflict() : Good();
}

}  // namespace kelpie::scsi
