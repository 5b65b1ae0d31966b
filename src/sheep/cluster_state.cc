#include "sheep/cluster_state.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "proto/constants.h"

namespace kelpie::sheep {

nlohmann::json NodeToJson(const cluster::NodeInfo& n) {
  return {{"addr", n.addr}, {"port", n.port}, {"zone", n.zone}, {"vnodes", n.nr_vnodes}};
}

cluster::NodeInfo NodeFromJson(const nlohmann::json& j) {
  cluster::NodeInfo n;
  n.addr = j.at("addr");
  n.port = j.at("port");
  n.zone = j.at("zone");
  n.nr_vnodes = j.at("vnodes");
  return n;
}

std::vector<cluster::NodeInfo> ClusterState::MembersAt(uint32_t e) const {
  for (const auto& r : history) {
    if (r.epoch == e) return r.nodes;
  }
  return {};
}

size_t ClusterState::CopiesOf(uint32_t vid) const {
  const VdiEntry* e = catalog.Find(vid);
  size_t copies = (e != nullptr && e->nr_copies != 0) ? e->nr_copies : config.copies;
  return copies == 0 ? 1 : copies;
}

proto::EcPolicy ClusterState::EcOf(uint64_t oid) const {
  if (!proto::IsDataOid(oid)) return {};
  const VdiEntry* e = catalog.Find(proto::OidToVid(oid));
  return proto::EcFromCopyPolicy(e != nullptr ? e->copy_policy : config.copy_policy);
}

uint64_t ClusterState::ObjectSizeOf(uint32_t vid) const {
  const VdiEntry* e = catalog.Find(vid);
  return uint64_t(1) << (e != nullptr ? e->block_size_shift : config.block_size_shift);
}

void ClusterState::RebuildRing() { ring_ = std::make_shared<cluster::Ring>(members); }

void ClusterState::ApplyMembership(const cluster::ClusterEvent& ev) {
  const bool leave = ev.type == cluster::ClusterEvent::Type::kLeave;
  members = ev.members;
  ++epoch;
  history.push_back({epoch, uint64_t(::time(nullptr)), members});
  // A whole-cluster shutdown keeps the locks: the clients come back to the restarted cluster.
  if (leave && !shutting_down) locks.DropGateway(ev.node.id());
  RebuildRing();
  spdlog::info("epoch {}: {} {} ({} members)", epoch, ev.node.id(), leave ? "left" : "joined",
               members.size());
}

nlohmann::json ClusterState::ApplyOperation(const nlohmann::json& op) {
  const std::string type = op.value("type", "");
  using namespace proto::res;
  if (type == "format") {
    config.formatted = true;
    config.ctime = op.at("ctime");
    config.copies = op.at("copies");
    config.copy_policy = op.at("copy_policy");
    config.block_size_shift = op.at("block_size_shift");
    config.lock = op.at("lock");
    catalog.Clear();
    locks.Clear();
    lu_states.clear();
    ++lu_generation;
    return {{"result", kSuccess}};
  }
  if (type == "shutdown") {
    shutting_down = true;
    return {{"result", kSuccess}};
  }
  if (!config.formatted) return {{"result", kWaitForFormat}};
  if (type == "new_vdi") {
    NewVdiArgs a;
    a.name = op.at("name");
    a.tag = op.at("tag");
    a.base_vid = op.at("base_vid");
    a.snapshot = op.at("snapshot");
    a.nr_copies = op.at("copies");
    a.copy_policy = op.at("copy_policy");
    a.block_size_shift = op.at("block_size_shift");
    a.now = op.at("now");
    const NewVdiResult r = catalog.Create(a);
    if (a.snapshot && r.result == kSuccess) {
      const VdiEntry* child = catalog.Find(r.vid);
      if (child != nullptr) locks.MoveToSnapshotChild(child->parent_vid, r.vid);
    }
    return {{"result", r.result}, {"vid", r.vid}, {"snap_id", r.snap_id}};
  }
  if (type == "del_vdi") {
    uint32_t vid = 0;
    const uint32_t rc = catalog.Delete(op.at("name"), op.at("tag"), op.at("snapid"), &vid);
    if (rc == kSuccess) locks.Unlock(vid);
    return {{"result", rc}, {"vid", vid}};
  }
  if (type == "lock") {
    return {{"result", locks.Lock(op.at("vid"), op.at("lock_type"), op.at("participant"))}};
  }
  if (type == "release") {
    return {{"result", locks.Release(op.at("vid"), op.at("participant"))}};
  }
  if (type == "unlock") return {{"result", locks.Unlock(op.at("vid"))}};
  if (type == "modify") {
    locks.Modify(op.at("vid"), op.at("participant"));
    return {{"result", kSuccess}};
  }
  if (type == "validate") {
    const bool valid = locks.Validate(op.at("vid"), op.at("participant"), op.at("gen"));
    return {{"result", kSuccess}, {"valid", valid}};
  }
  if (type == "lu_state_cas") {
    LuState& lu = lu_states[op.at("name").get<std::string>()];
    if (lu.version != op.at("expect").get<uint64_t>()) {
      return {{"result", kVersionConflict}, {"version", lu.version}};
    }
    lu.version++;
    lu.state = op.at("state").get<std::string>();
    ++lu_generation;
    return {{"result", kSuccess}, {"version", lu.version}, {"generation", lu_generation}};
  }
  if (type == "drop_participant") {
    locks.DropParticipant(op.at("participant"));
    return {{"result", kSuccess}};
  }
  spdlog::warn("ignoring unknown cluster operation '{}'", type);
  return {{"result", kInvalidParms}};
}

nlohmann::json ClusterState::LuStatesToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, lu] : lu_states) j[name] = {{"version", lu.version}, {"state", lu.state}};
  return j;
}

std::string ClusterState::Serialize() const {
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& r : history) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : r.nodes) nodes.push_back(NodeToJson(n));
    hist.push_back({{"epoch", r.epoch}, {"time", r.time}, {"nodes", nodes}});
  }
  nlohmann::json j = {
      {"config",
       {{"formatted", config.formatted},
        {"ctime", config.ctime},
        {"copies", config.copies},
        {"copy_policy", config.copy_policy},
        {"block_size_shift", config.block_size_shift},
        {"lock", config.lock}}},
      {"epoch", epoch},
      {"history", hist},
      {"vdis", catalog.ToJson()},
      {"locks", locks.ToJson()},
      {"lu_states", LuStatesToJson()},
      {"lu_generation", lu_generation},
  };
  return j.dump();
}

bool ClusterState::Deserialize(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    const auto& c = j.at("config");
    config.formatted = c.at("formatted");
    config.ctime = c.at("ctime");
    config.copies = c.at("copies");
    config.copy_policy = c.at("copy_policy");
    config.block_size_shift = c.at("block_size_shift");
    config.lock = c.at("lock");
    epoch = j.at("epoch");
    history.clear();
    for (const auto& r : j.at("history")) {
      EpochRecord rec;
      rec.epoch = r.at("epoch");
      rec.time = r.at("time");
      for (const auto& n : r.at("nodes")) rec.nodes.push_back(NodeFromJson(n));
      history.push_back(std::move(rec));
    }
    catalog.FromJson(j.at("vdis"));
    locks.FromJson(j.at("locks"));
    lu_states.clear();
    if (j.contains("lu_states")) {
      for (const auto& [name, lu] : j.at("lu_states").items()) {
        lu_states[name] = LuState{lu.at("version"), lu.at("state")};
      }
    }
    lu_generation = j.value("lu_generation", uint64_t(0));
    return true;
  } catch (const std::exception& e) {
    spdlog::error("cannot parse cluster state: {}", e.what());
    return false;
  }
}

}  // namespace kelpie::sheep
