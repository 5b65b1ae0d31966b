// LockTable: VDI locks as cluster state (changed only by ordered cluster operations, so identical
// on every sheep). A normal lock has one holder; a shared lock (iSCSI multipath) has many
// participants, each in a coherence state: Modified, Shared or Invalidated.
//
// A participant is a client as the gateway sheep that serves it names it: "<gateway>/<client>".
// When a gateway leaves the cluster, every participant it served is dropped.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace kelpie::sheep {

enum class ParticipantState { kModified, kShared, kInvalidated };
const char* ParticipantStateName(ParticipantState s);

struct VdiLock {
  uint32_t type = 0;  // proto::kLockNormal or kLockShared
  std::map<std::string, ParticipantState> participants;
};

class LockTable {
 public:
  // LOCK_VDI. Normal: exclusive (a second holder gets VDI_LOCKED; the same holder again succeeds).
  // Shared: joins as Modified if first, else Invalidated if someone is Modified, else Shared.
  // Mixing types gets VDI_LOCKED.
  uint32_t Lock(uint32_t vid, uint32_t type, const std::string& participant);
  // RELEASE_VDI by one participant; VDI_NOT_LOCKED if it holds no lock on vid.
  uint32_t Release(uint32_t vid, const std::string& participant);
  // Drops every lock on vid (dog vdi lock unlock).
  uint32_t Unlock(uint32_t vid);
  // Drops a participant from every lock (its connection closed).
  void DropParticipant(const std::string& participant);
  // Drops every participant whose id starts with "<gateway>/" (the gateway left).
  void DropGateway(const std::string& gateway);
  const VdiLock* Find(uint32_t vid) const;
  const std::map<uint32_t, VdiLock>& locks() const { return locks_; }
  void Clear() { locks_.clear(); }

  nlohmann::json ToJson() const;
  void FromJson(const nlohmann::json& j);

 private:
  std::map<uint32_t, VdiLock> locks_;
};

}  // namespace kelpie::sheep
