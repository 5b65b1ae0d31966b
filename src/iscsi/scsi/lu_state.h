// The state every target process of one LU shares through the backend (BlockBackend::LoadShared /
// StoreShared): persistent reservations, the SPC-2 reservation, unit attentions per I_T nexus,
// the known I_T nexuses and the target ports. Serialized as JSON; updated with a compare-and-swap
// loop so two processes never lose each other's changes.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "iscsi/scsi/block_backend.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {

// Persistent reservation types (SPC-4 Table 194).
namespace pr_type {
inline constexpr uint8_t kWriteExclusive = 1, kExclusiveAccess = 3,
                         kWriteExclusiveRegistrantsOnly = 5, kExclusiveAccessRegistrantsOnly = 6,
                         kWriteExclusiveAllRegistrants = 7, kExclusiveAccessAllRegistrants = 8;
}  // namespace pr_type
bool IsValidPrType(uint8_t type);
// WE-AR / EA-AR: every registrant is a reservation holder.
bool IsAllRegistrantsType(uint8_t type);
// Types whose non-holder registrants may access the LU (RO and AR types).
bool IsRegistrantsAccessType(uint8_t type);
// Types that forbid reads by non-holders (EA family).
bool IsExclusiveAccessType(uint8_t type);

struct Registration {
  uint64_t key = 0;
  std::string initiator;  // iSCSI name, for READ FULL STATUS TransportIDs
  std::string isid;
  uint16_t rel_port = 0;
};

struct PrReservation {
  std::string holder;  // nexus id of the holder; empty for all-registrants types
  uint8_t type = 0;
  uint8_t scope = 0;  // 0 = LU_SCOPE (the only scope supported)
};

struct TargetPort {
  uint16_t tpg = 0;
  uint16_t rel_port = 0;
  bool operator==(const TargetPort&) const = default;
};

struct SharedState {
  static constexpr size_t kMaxUnitAttentionsPerNexus = 4;
  static constexpr size_t kMaxNexuses = 256;  // oldest logins beyond this are forgotten

  uint32_t pr_generation = 0;
  std::map<std::string, Registration> registrations;  // nexus id → registration
  std::optional<PrReservation> reservation;
  bool aptpl = false;       // last APTPL bit received
  std::string spc2_holder;  // nexus id holding RESERVE(6); "" if none
  std::map<std::string, std::vector<SenseCode>>
      unit_attentions;                      // nexus id → pending UAs, oldest first
  std::map<std::string, uint64_t> nexuses;  // logged-in nexus id → login sequence number
  uint64_t login_seq = 0;
  std::vector<TargetPort> ports;  // every process's target port, in arrival order
  uint64_t capacity_bytes = 0;    // last capacity a process announced (2A/09)
  // Caching mode page WCE, the same through every target: writes without FUA may stay in the
  // volatile write cache (on every copy, durable at SYNCHRONIZE CACHE). MODE SELECT changes it.
  bool write_cache = true;

  bool IsRegistered(const std::string& nexus) const { return registrations.contains(nexus); }
  // Whether `nexus` holds the PR reservation (for all-registrants types: is registered).
  bool IsReservationHolder(const std::string& nexus) const;

  // Queues `code` for `nexus` if the nexus is logged in, it is not already queued and fewer than
  // kMaxUnitAttentionsPerNexus are pending.
  void QueueUnitAttention(const std::string& nexus, SenseCode code);
  // Queues `code` for every logged-in nexus except `except`.
  void QueueUnitAttentionForAll(SenseCode code, const std::string& except = {});
  // Removes and returns the oldest UA of `nexus`.
  std::optional<SenseCode> PopUnitAttention(const std::string& nexus);
  bool HasUnitAttention(const std::string& nexus) const;

  // Records a login (forgetting the oldest nexuses beyond kMaxNexuses) / a nexus that ended.
  void AddNexus(const std::string& nexus);
  void RemoveNexus(const std::string& nexus);
  // Adds a target port unless present; returns whether it was added.
  bool AddPort(TargetPort port);
};

std::string SerializeSharedState(const SharedState& state);
// An empty string is the initial (empty) state; unparsable text is logged and treated as empty.
SharedState ParseSharedState(const std::string& text);

struct SharedSnapshot {
  SharedState state;
  uint64_t version = 0;
  uint64_t fence = 0;   // for the data calls made on the strength of this state
  bool cached = false;  // from the backend's cache: not known to be current until a fence holds
};

// The parsed form of a backend's load (ParseSharedState may throw on an unreadable state).
SharedSnapshot ToSnapshot(const SharedLoad& load);

// may_cache: the backend may answer from its cache (see BlockBackend).
IoStatus LoadSharedSnapshot(BlockBackend& backend, SharedSnapshot* snapshot,
                            bool may_cache = false);

// Compare-and-swap loop. Applies `mutate` to a copy of snapshot->state and stores it with
// expect_version = snapshot->version; on kConflict reloads and retries (bounded). `mutate` may run
// several times, each time on fresh state: it must derive everything from its argument and reset
// any captured outputs. Returning false from `mutate` means "nothing to change": nothing is stored
// and the call succeeds. On success *snapshot holds the state as stored (or as last loaded), with
// its fence; after a store or a reload it is known current (cached = false).
IoStatus UpdateSharedState(BlockBackend& backend, SharedSnapshot* snapshot,
                           const std::function<bool(SharedState&)>& mutate);

}  // namespace kelpie::scsi
