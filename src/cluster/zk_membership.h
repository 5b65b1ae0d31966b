// The ZooKeeper driver's pure parts: the -c spec, the znode layout and names, the encoding of
// queue entries, and the replicated membership that every member computes by applying the same
// queue entries in the same order.
//
// Layout under kRoot:
//   members/ADDR:PORT#NONCE    ephemeral, one per live incarnation of a sheep; data: its node and
//                              "applied" (the last queue seq it has applied; absent while joining)
//   queue/eNNNNNNNNNN          persistent sequential: the total order of join / leave / notify
//   snapshots/NONCE            header of the master's snapshot for a joining incarnation
//   snapshots/NONCE.WRITER.I   its parts (a snapshot may be larger than one znode may hold)
//   lock                       ephemeral: held while deciding between founding and joining
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "cluster/node.h"

namespace kelpie::cluster::zk {

inline constexpr char kRoot[] = "/kelpie";
inline constexpr char kMembers[] = "/kelpie/members";
inline constexpr char kQueue[] = "/kelpie/queue";
inline constexpr char kSnapshots[] = "/kelpie/snapshots";
inline constexpr char kLock[] = "/kelpie/lock";
inline constexpr char kQueuePrefix[] = "/kelpie/queue/e";

struct Spec {
  std::string hosts;       // "HOST:PORT,HOST:PORT" as the ZooKeeper client takes it
  int timeout_ms = 30000;  // session timeout asked of the ensemble
};

// Parses sheep's -c "zookeeper:HOST:PORT[,HOST:PORT...][,timeout=SECONDS]". Returns nullopt with
// a message in `error` when malformed.
std::optional<Spec> ParseSpec(const std::string& spec, std::string& error);

// "ADDR:PORT#NONCE", the name of an incarnation's member znode, and back (nullopt if malformed).
std::string MemberName(const NodeInfo& node, const std::string& nonce);
std::optional<std::string> NonceOfMember(const std::string& name);

// The seq of a queue znode ("e0000000041" -> 42: ZooKeeper counts from 0, the driver's seqs from
// 1), or nullopt for another name.
std::optional<uint64_t> QueueSeq(const std::string& name);

std::string NodeToJsonText(const NodeInfo& n);
std::optional<NodeInfo> NodeFromJsonText(const std::string& text);

// One incarnation of a sheep in the membership: a sheep that restarts, or whose session expired,
// comes back as a new incarnation (new nonce). last_counter numbers its messages, so that a
// message written twice (a retry after a lost connection) is applied once.
struct Member {
  std::string nonce;
  NodeInfo node;
  uint64_t last_counter = 0;
};

struct Entry {
  enum class Type { kJoin, kLeave, kNotify, kFound };
  Type type = Type::kNotify;
  std::string nonce;     // whose join / leave / message
  NodeInfo node;         // kJoin, kFound
  uint64_t counter = 0;  // kNotify: the sender's message number, from 1
  std::string payload;   // kNotify

  std::string Encode() const;
  static std::optional<Entry> Decode(const std::string& text);
};

// The membership as the queue defines it. Apply is deterministic: same entries, same order, same
// members and events on every sheep.
//  - join: added, unless that incarnation is a member, or another incarnation of the same node
//    (addr:port) still is (a node is on the ring once; the newcomer retries after the leave);
//  - leave: removed if a member (others may write the same leave too: the first one counts);
//  - notify: delivered if the sender is a member and the message is newer than its last one;
//  - found: a node that found no live member starts a new cluster; members ignore it.
class Membership {
 public:
  // Applies the entry at `seq`; returns the event to deliver, if any. `self` is this node's
  // current nonce (for is_self).
  std::optional<ClusterEvent> Apply(uint64_t seq, const Entry& e, const std::string& self);

  const std::vector<Member>& members() const { return members_; }
  const Member* Find(const std::string& nonce) const;
  void Reset(std::vector<Member> members) { members_ = std::move(members); }

  std::string ToJson() const;
  bool FromJson(const std::string& text);

 private:
  std::vector<Member> members_;  // join order; the first is the master
};

}  // namespace kelpie::cluster::zk
