// Membership: which sheep form the cluster, and one total order of events among them.
//
// A driver delivers to every member the same sequence of events: a node joined, a node left
// (gracefully or because it died), or a node broadcast a message (cluster operations such as VDI
// creation and locks travel this way, so every sheep applies them in the same order).
//
// Joining: a new node asks to join; the current master (the oldest member) accepts it and
// attaches a snapshot of the cluster state taken exactly at that point in the order, so the
// newcomer starts from the snapshot and then applies every later event. The first node of an
// empty cluster is accepted with an empty snapshot (it uses its own persisted state).
//
// Events are delivered on the driver's own thread, one at a time; the callback must apply them
// before returning. The snapshot callback is called on that thread too, between events.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/node.h"

namespace kelpie::cluster {

struct ClusterEvent {
  enum class Type { kJoin, kLeave, kNotify };
  Type type = Type::kNotify;
  uint64_t seq = 0;     // position in the total order, strictly increasing
  NodeInfo node;        // who joined / left / sent the message
  std::string payload;  // kNotify: the message; kJoin: the master's snapshot (may be empty)
  std::vector<NodeInfo> members;  // the membership after this event, in join order
  bool is_self = false;           // the event concerns this node (its own join, or its own message)
};

class MembershipDriver {
 public:
  using EventFn = std::function<void(const ClusterEvent&)>;
  using SnapshotFn = std::function<std::string()>;
  using ServingFn = std::function<void(bool serving)>;

  virtual ~MembershipDriver() = default;

  // Starts delivering events and asks to join as `self`. The first event this node receives is
  // its own kJoin (is_self, payload = snapshot); nothing before it is delivered.
  // Returns false (with a log line) if the driver cannot start.
  virtual bool Start(const NodeInfo& self, SnapshotFn snapshot, EventFn on_event) = 0;
  // Broadcasts a message; it is delivered (to every member, this one included) in the total order.
  virtual void Notify(const std::string& payload) = 0;
  // Leaves gracefully (others receive kLeave) and stops delivering events.
  virtual void Stop() = 0;
  // Set before Start. A driver whose members can be cut off from the coordination service calls
  // fn(false) (on any thread) as soon as this node can no longer be sure it is still a member: the
  // others may go on without it, so it must not serve I/O (no split brain). fn(true) follows when
  // it is sure again: the same membership resumed, or it rejoined (after its own kJoin). Drivers
  // without that fault (local) never call it.
  virtual void SetServingHandler(ServingFn fn) { (void)fn; }
};

// Builds a driver from sheep's -c option: "local" or "local:FILE" (default FILE
// /tmp/sheepdog_shm), or "zookeeper:HOST:PORT[,HOST:PORT...][,timeout=SECONDS]". Returns null
// with a message in `error` for an unknown or malformed spec.
std::unique_ptr<MembershipDriver> MakeDriver(const std::string& spec, std::string& error);

}  // namespace kelpie::cluster
