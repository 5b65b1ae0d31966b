// ClusterState: everything every sheep of the cluster agrees on — the format settings, the epoch
// and its history of memberships, the VDI catalog and the VDI locks. It changes only by applying
// membership events and ordered cluster operations, in the total order the driver delivers, so
// every sheep computes the same state. It is persisted under DIR after each change, and a joining
// sheep receives it as the master's snapshot.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "cluster/node.h"
#include "cluster/ring.h"
#include "proto/ec.h"
#include "sheep/lock_table.h"
#include "sheep/vdi_catalog.h"

namespace kelpie::sheep {

struct EpochRecord {
  uint32_t epoch = 0;
  uint64_t time = 0;  // unix seconds
  std::vector<cluster::NodeInfo> nodes;
};

struct FormatConfig {
  bool formatted = false;
  uint64_t ctime = 0;  // unix seconds of the format
  uint8_t copies = 3;
  uint8_t copy_policy = 0;
  uint8_t block_size_shift = 22;
  bool lock = true;
};

class ClusterState {
 public:
  FormatConfig config;
  uint32_t epoch = 0;
  std::vector<cluster::NodeInfo> members;  // join order
  std::vector<EpochRecord> history;        // oldest first
  VdiCatalog catalog;
  LockTable locks;
  // Shared logical-unit state per VDI name (see LU_STATE_GET/CAS): opaque to sheep.
  struct LuState {
    uint64_t version = 0;
    std::string state;
  };
  std::map<std::string, LuState> lu_states;
  // Bumped by every change of any LU state (and by format); never goes back. Object requests
  // fenced with an older value are refused (proto::flag::kLuFence).
  uint64_t lu_generation = 0;
  bool shutting_down = false;

  // The ring of the current members (rebuilt on every membership change).
  std::shared_ptr<const cluster::Ring> ring() const { return ring_; }
  // Members of an earlier epoch (empty if unknown).
  std::vector<cluster::NodeInfo> MembersAt(uint32_t epoch) const;
  // Copies of objects of `vid`: the VDI's own, else the cluster default; capped at the zones.
  size_t CopiesOf(uint32_t vid) const;
  // The erasure code of a data object (its VDI's copy policy); none for inodes and other objects.
  proto::EcPolicy EcOf(uint64_t oid) const;
  // Object size of a VDI's data objects.
  uint64_t ObjectSizeOf(uint32_t vid) const;

  // Applies a membership change: new epoch, new ring, history, locks of a leaving gateway dropped.
  void ApplyMembership(const cluster::ClusterEvent& ev);
  // Applies an ordered cluster operation; returns its result (as JSON) for the sender to see.
  nlohmann::json ApplyOperation(const nlohmann::json& op);

  std::string Serialize() const;
  bool Deserialize(const std::string& text);

 private:
  void RebuildRing();
  nlohmann::json LuStatesToJson() const;
  std::shared_ptr<const cluster::Ring> ring_ = std::make_shared<cluster::Ring>();
};

nlohmann::json NodeToJson(const cluster::NodeInfo& n);
cluster::NodeInfo NodeFromJson(const nlohmann::json& j);

}  // namespace kelpie::sheep
