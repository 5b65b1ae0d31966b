// LockTable: VDI locks as cluster state (changed only by ordered cluster operations, so identical
// on every sheep). A normal lock has one holder; a shared lock (iSCSI multipath) has many
// participants, each in a coherence state: Modified, Shared or Invalidated.
//
// A participant is one client process as the gateway sheep that serves it names it:
// "<gateway>/<client>" (see client_identity.h). When a gateway leaves the cluster, every
// participant it served is dropped.
//
// Coherence (MSI). Every participant caches the VDI's inode. An index write (an update of the
// inode's data_vdi_id table) makes the writer Modified and every other participant Invalidated
// (Modify). A full read of the inode makes the reader Shared again (Validate) — but only if no
// Modify was applied since the reader's gateway looked at the lock's generation before the read:
// a refresh that raced with an index write stays Invalidated and refreshes again. An Invalidated
// participant must not be served anything that depends on its cached table: an object of the
// VDI or of any of its ancestors (MustRefresh).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace kelpie::sheep {

// The participant id of `client` served by gateway sheep `gateway` ("addr:port").
std::string ParticipantId(const std::string& gateway, const std::string& client);

enum class ParticipantState { kModified, kShared, kInvalidated };
const char* ParticipantStateName(ParticipantState s);

struct VdiLock {
  uint32_t type = 0;  // proto::kLockNormal or kLockShared
  uint64_t gen = 0;   // bumped by every Modify (and by whatever invalidates everyone)
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
  // Drops a participant from every lock (it went away). If it was Modified, everyone else is
  // invalidated: its last index write may have landed without its invalidation being ordered.
  void DropParticipant(const std::string& participant);
  // Drops every participant whose id starts with "<gateway>/" (the gateway left).
  void DropGateway(const std::string& gateway);

  // An index write by `participant` on shared-locked vid: it becomes Modified, all others
  // Invalidated, gen+1. No-op for a non-participant or a normal lock.
  void Modify(uint32_t vid, const std::string& participant);
  // A full inode read by `participant`, begun when the lock's generation was `gen`: it becomes
  // Shared if the generation is unchanged. Returns whether it is now valid (Shared or Modified).
  bool Validate(uint32_t vid, const std::string& participant, uint64_t gen);
  // Would an index write by `participant` change anyone's state? (Else no ordering is needed
  // before the write, only the generation bump after it.)
  bool NeedsModify(uint32_t vid, const std::string& participant) const;
  // The working VDI `old_vid` became a snapshot and `new_vid` took its name: its lock moves to
  // new_vid, every shared participant Invalidated (their cached inodes name the snapshot).
  void MoveToSnapshotChild(uint32_t old_vid, uint32_t new_vid);
  // Must `participant` refresh before a request on an object of `oid_vid` is served? True if it
  // is Invalidated on a shared lock whose VDI is oid_vid or descends from it. `parent_of` gives a
  // VDI's parent (0 for none).
  bool MustRefresh(const std::string& participant, uint32_t oid_vid,
                   const std::function<uint32_t(uint32_t)>& parent_of) const;
  // State of `participant` on vid's shared lock, if it is one.
  const ParticipantState* StateOf(uint32_t vid, const std::string& participant) const;

  const VdiLock* Find(uint32_t vid) const;
  const std::map<uint32_t, VdiLock>& locks() const { return locks_; }
  void Clear() { locks_.clear(); }

  nlohmann::json ToJson() const;
  void FromJson(const nlohmann::json& j);

 private:
  void InvalidateAllBut(VdiLock& l, const std::string& keep);
  std::map<uint32_t, VdiLock> locks_;
};

}  // namespace kelpie::sheep
