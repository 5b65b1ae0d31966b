#include "sheep/lock_table.h"

#include <nlohmann/json.hpp>

#include "proto/constants.h"

namespace kelpie::sheep {

std::string ParticipantId(const std::string& gateway, const std::string& client) {
  return gateway + "/" + client;
}

const char* ParticipantStateName(ParticipantState s) {
  switch (s) {
    case ParticipantState::kModified:
      return "modified";
    case ParticipantState::kShared:
      return "shared";
    case ParticipantState::kInvalidated:
      return "invalidated";
  }
  return "unknown";
}

uint32_t LockTable::Lock(uint32_t vid, uint32_t type, const std::string& participant) {
  if (type != proto::kLockNormal && type != proto::kLockShared) return proto::res::kInvalidParms;
  auto it = locks_.find(vid);
  if (it == locks_.end()) {
    VdiLock& l = locks_[vid];
    l.type = type;
    l.participants[participant] = ParticipantState::kModified;
    return proto::res::kSuccess;
  }
  VdiLock& l = it->second;
  if (l.participants.count(participant) != 0 && l.type == type) return proto::res::kSuccess;
  if (l.type != type || type == proto::kLockNormal) return proto::res::kVdiLocked;
  bool someone_modified = false;
  for (const auto& [p, s] : l.participants) someone_modified |= s == ParticipantState::kModified;
  l.participants[participant] =
      someone_modified ? ParticipantState::kInvalidated : ParticipantState::kShared;
  return proto::res::kSuccess;
}

uint32_t LockTable::Release(uint32_t vid, const std::string& participant) {
  auto it = locks_.find(vid);
  if (it == locks_.end() || it->second.participants.erase(participant) == 0) {
    return proto::res::kVdiNotLocked;
  }
  if (it->second.participants.empty()) locks_.erase(it);
  return proto::res::kSuccess;
}

uint32_t LockTable::Unlock(uint32_t vid) {
  return locks_.erase(vid) != 0 ? proto::res::kSuccess : proto::res::kVdiNotLocked;
}

void LockTable::InvalidateAllBut(VdiLock& l, const std::string& keep) {
  for (auto& [p, s] : l.participants) {
    if (p != keep) s = ParticipantState::kInvalidated;
  }
  ++l.gen;
}

void LockTable::DropParticipant(const std::string& participant) {
  for (auto it = locks_.begin(); it != locks_.end();) {
    auto p = it->second.participants.find(participant);
    if (p != it->second.participants.end()) {
      const bool was_modified = p->second == ParticipantState::kModified;
      it->second.participants.erase(p);
      if (was_modified && it->second.type == proto::kLockShared) InvalidateAllBut(it->second, "");
    }
    it = it->second.participants.empty() ? locks_.erase(it) : std::next(it);
  }
}

void LockTable::DropGateway(const std::string& gateway) {
  const std::string prefix = ParticipantId(gateway, "");
  std::vector<std::string> gone;
  for (const auto& [vid, l] : locks_) {
    for (const auto& [p, s] : l.participants) {
      if (p.compare(0, prefix.size(), prefix) == 0) gone.push_back(p);
    }
  }
  for (const auto& p : gone) DropParticipant(p);
}

void LockTable::Modify(uint32_t vid, const std::string& participant) {
  auto it = locks_.find(vid);
  if (it == locks_.end() || it->second.type != proto::kLockShared) return;
  auto p = it->second.participants.find(participant);
  if (p == it->second.participants.end()) return;
  p->second = ParticipantState::kModified;
  InvalidateAllBut(it->second, participant);
}

bool LockTable::Validate(uint32_t vid, const std::string& participant, uint64_t gen) {
  auto it = locks_.find(vid);
  if (it == locks_.end()) return true;
  auto p = it->second.participants.find(participant);
  if (p == it->second.participants.end()) return true;
  if (it->second.gen == gen) p->second = ParticipantState::kShared;
  return p->second != ParticipantState::kInvalidated;
}

bool LockTable::NeedsModify(uint32_t vid, const std::string& participant) const {
  const VdiLock* l = Find(vid);
  if (l == nullptr || l->type != proto::kLockShared) return false;
  auto p = l->participants.find(participant);
  if (p == l->participants.end()) return false;
  if (p->second != ParticipantState::kModified) return true;
  for (const auto& [q, s] : l->participants) {
    if (q != participant && s != ParticipantState::kInvalidated) return true;
  }
  return false;
}

void LockTable::MoveToSnapshotChild(uint32_t old_vid, uint32_t new_vid) {
  auto it = locks_.find(old_vid);
  if (it == locks_.end()) return;
  VdiLock moved = std::move(it->second);
  locks_.erase(it);
  if (moved.type == proto::kLockShared) InvalidateAllBut(moved, "");
  locks_[new_vid] = std::move(moved);
}

bool LockTable::MustRefresh(const std::string& participant, uint32_t oid_vid,
                            const std::function<uint32_t(uint32_t)>& parent_of) const {
  for (const auto& [vid, l] : locks_) {
    if (l.type != proto::kLockShared) continue;
    auto p = l.participants.find(participant);
    if (p == l.participants.end() || p->second != ParticipantState::kInvalidated) continue;
    // Walk from the locked VDI up its ancestry (bounded: a chain cannot exceed the vid space).
    uint32_t v = vid;
    for (int depth = 0; v != 0 && depth < (1 << 24); ++depth) {
      if (v == oid_vid) return true;
      v = parent_of(v);
    }
  }
  return false;
}

const ParticipantState* LockTable::StateOf(uint32_t vid, const std::string& participant) const {
  const VdiLock* l = Find(vid);
  if (l == nullptr || l->type != proto::kLockShared) return nullptr;
  auto p = l->participants.find(participant);
  return p == l->participants.end() ? nullptr : &p->second;
}

const VdiLock* LockTable::Find(uint32_t vid) const {
  auto it = locks_.find(vid);
  return it == locks_.end() ? nullptr : &it->second;
}

nlohmann::json LockTable::ToJson() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [vid, l] : locks_) {
    nlohmann::json ps = nlohmann::json::object();
    for (const auto& [p, s] : l.participants) ps[p] = int(s);
    arr.push_back({{"vid", vid}, {"type", l.type}, {"gen", l.gen}, {"participants", ps}});
  }
  return arr;
}

void LockTable::FromJson(const nlohmann::json& j) {
  locks_.clear();
  for (const auto& x : j) {
    VdiLock& l = locks_[x.at("vid").get<uint32_t>()];
    l.type = x.at("type");
    l.gen = x.value("gen", uint64_t(0));
    for (const auto& [p, s] : x.at("participants").items()) {
      l.participants[p] = ParticipantState(s.get<int>());
    }
  }
}

}  // namespace kelpie::sheep
