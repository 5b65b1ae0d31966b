#include "cluster/zk_membership.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace kelpie::cluster::zk {

using nlohmann::json;

namespace {

constexpr char kScheme[] = "zookeeper:";

bool ParseUint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

json NodeJson(const NodeInfo& n) {
  return {{"addr", n.addr}, {"port", n.port}, {"zone", n.zone}, {"vnodes", n.nr_vnodes}};
}

NodeInfo NodeFromJson(const json& j) {
  NodeInfo n;
  n.addr = j.at("addr");
  n.port = j.at("port");
  n.zone = j.at("zone");
  n.nr_vnodes = j.at("vnodes");
  return n;
}

const char* TypeName(Entry::Type t) {
  switch (t) {
    case Entry::Type::kJoin:
      return "join";
    case Entry::Type::kLeave:
      return "leave";
    case Entry::Type::kNotify:
      return "notify";
    case Entry::Type::kFound:
      return "found";
  }
  return "";
}

}  // namespace

std::optional<Spec> ParseSpec(const std::string& spec, std::string& error) {
  const std::string_view scheme(kScheme);
  if (spec.compare(0, scheme.size(), scheme) != 0) {
    error = "not a zookeeper spec";
    return std::nullopt;
  }
  Spec out;
  std::vector<std::string> hosts;
  const std::string rest = spec.substr(scheme.size());
  size_t pos = 0;
  while (pos <= rest.size()) {
    const size_t end = std::min(rest.find(',', pos), rest.size());
    const std::string item = rest.substr(pos, end - pos);
    pos = end + 1;
    if (item.rfind("timeout=", 0) == 0) {
      uint64_t seconds = 0;
      if (!ParseUint(std::string_view(item).substr(8), seconds) || seconds < 1 || seconds > 3600) {
        error = "timeout must be 1-3600 seconds, got '" + item.substr(8) + "'";
        return std::nullopt;
      }
      out.timeout_ms = int(seconds * 1000);
      continue;
    }
    const size_t colon = item.rfind(':');
    uint64_t port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !ParseUint(std::string_view(item).substr(colon + 1), port) || port == 0 || port > 65535 ||
        item.find_first_of("/= ") != std::string::npos) {
      error = "expected HOST:PORT, got '" + item + "'";
      return std::nullopt;
    }
    hosts.push_back(item);
  }
  if (hosts.empty()) {
    error = "no ZooKeeper server given (zookeeper:HOST:PORT[,HOST:PORT...][,timeout=SECONDS])";
    return std::nullopt;
  }
  for (size_t i = 0; i < hosts.size(); ++i) out.hosts += (i ? "," : "") + hosts[i];
  return out;
}

std::string MemberName(const NodeInfo& node, const std::string& nonce) {
  return node.id() + "#" + nonce;
}

std::optional<std::string> NonceOfMember(const std::string& name) {
  const size_t hash = name.rfind('#');
  if (hash == std::string::npos || hash == 0 || hash + 1 == name.size()) return std::nullopt;
  return name.substr(hash + 1);
}

std::optional<uint64_t> QueueSeq(const std::string& name) {
  // ZooKeeper appends a 10-digit counter to the name the creator gave ("e").
  if (name.size() != 11 || name[0] != 'e') return std::nullopt;
  uint64_t counter = 0;
  if (!ParseUint(std::string_view(name).substr(1), counter)) return std::nullopt;
  return counter + 1;
}

std::string NodeToJsonText(const NodeInfo& n) { return NodeJson(n).dump(); }

std::optional<NodeInfo> NodeFromJsonText(const std::string& text) {
  try {
    return NodeFromJson(json::parse(text));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string Entry::Encode() const {
  json j = {{"t", TypeName(type)}, {"n", nonce}};
  if (type == Type::kJoin || type == Type::kFound) j["node"] = NodeJson(node);
  if (type == Type::kNotify) {
    j["c"] = counter;
    j["p"] = payload;
  }
  return j.dump();
}

std::optional<Entry> Entry::Decode(const std::string& text) {
  try {
    const json j = json::parse(text);
    Entry e;
    const std::string t = j.at("t");
    e.nonce = j.at("n");
    if (t == "join" || t == "found") {
      e.type = t == "join" ? Type::kJoin : Type::kFound;
      e.node = NodeFromJson(j.at("node"));
    } else if (t == "leave") {
      e.type = Type::kLeave;
    } else if (t == "notify") {
      e.type = Type::kNotify;
      e.counter = j.at("c");
      e.payload = j.at("p");
    } else {
      return std::nullopt;
    }
    return e;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

const Member* Membership::Find(const std::string& nonce) const {
  for (const Member& m : members_) {
    if (m.nonce == nonce) return &m;
  }
  return nullptr;
}

std::optional<ClusterEvent> Membership::Apply(uint64_t seq, const Entry& e,
                                              const std::string& self) {
  ClusterEvent ev;
  ev.seq = seq;
  ev.is_self = e.nonce == self;
  switch (e.type) {
    case Entry::Type::kFound:
      return std::nullopt;
    case Entry::Type::kJoin: {
      if (Find(e.nonce) != nullptr) return std::nullopt;
      for (const Member& m : members_) {
        if (m.node == e.node) {
          spdlog::warn("zookeeper: join of {} ignored: an earlier incarnation is still a member",
                       e.node.id());
          return std::nullopt;
        }
      }
      members_.push_back(Member{e.nonce, e.node, 0});
      ev.type = ClusterEvent::Type::kJoin;
      ev.node = e.node;
      break;
    }
    case Entry::Type::kLeave: {
      auto it = std::find_if(members_.begin(), members_.end(),
                             [&](const Member& m) { return m.nonce == e.nonce; });
      if (it == members_.end()) return std::nullopt;
      ev.type = ClusterEvent::Type::kLeave;
      ev.node = it->node;
      members_.erase(it);
      break;
    }
    case Entry::Type::kNotify: {
      auto it = std::find_if(members_.begin(), members_.end(),
                             [&](const Member& m) { return m.nonce == e.nonce; });
      if (it == members_.end() || e.counter <= it->last_counter) return std::nullopt;
      it->last_counter = e.counter;
      ev.type = ClusterEvent::Type::kNotify;
      ev.node = it->node;
      ev.payload = e.payload;
      break;
    }
  }
  for (const Member& m : members_) ev.members.push_back(m.node);
  return ev;
}

std::string Membership::ToJson() const {
  json arr = json::array();
  for (const Member& m : members_) {
    arr.push_back({{"n", m.nonce}, {"node", NodeJson(m.node)}, {"c", m.last_counter}});
  }
  return arr.dump();
}

bool Membership::FromJson(const std::string& text) {
  try {
    std::vector<Member> out;
    for (const json& j : json::parse(text)) {
      out.push_back(Member{j.at("n"), NodeFromJson(j.at("node")), j.at("c")});
    }
    members_ = std::move(out);
    return true;
  } catch (const std::exception& e) {
    spdlog::error("zookeeper: bad membership in a snapshot: {}", e.what());
    return false;
  }
}

}  // namespace kelpie::cluster::zk
