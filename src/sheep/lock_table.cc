#include "sheep/lock_table.h"

#include <nlohmann/json.hpp>

#include "proto/constants.h"

namespace kelpie::sheep {

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

void LockTable::DropParticipant(const std::string& participant) {
  for (auto it = locks_.begin(); it != locks_.end();) {
    it->second.participants.erase(participant);
    it = it->second.participants.empty() ? locks_.erase(it) : std::next(it);
  }
}

void LockTable::DropGateway(const std::string& gateway) {
  const std::string prefix = gateway + "/";
  for (auto it = locks_.begin(); it != locks_.end();) {
    auto& ps = it->second.participants;
    for (auto p = ps.begin(); p != ps.end();) {
      p = p->first.compare(0, prefix.size(), prefix) == 0 ? ps.erase(p) : std::next(p);
    }
    it = ps.empty() ? locks_.erase(it) : std::next(it);
  }
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
    arr.push_back({{"vid", vid}, {"type", l.type}, {"participants", ps}});
  }
  return arr;
}

void LockTable::FromJson(const nlohmann::json& j) {
  locks_.clear();
  for (const auto& x : j) {
    VdiLock& l = locks_[x.at("vid").get<uint32_t>()];
    l.type = x.at("type");
    for (const auto& [p, s] : x.at("participants").items()) {
      l.participants[p] = ParticipantState(s.get<int>());
    }
  }
}

}  // namespace kelpie::sheep
