// The ZooKeeper driver's pure parts: the -c spec, znode names, queue entries, and the replicated
// membership (duplicates of joins, leaves and messages take effect once; a node is on the ring
// once; a snapshot of the membership restores it exactly).
#include "cluster/zk_membership.h"

#include <gtest/gtest.h>

#include <memory>

#include "cluster/membership.h"

namespace kelpie::cluster::zk {
namespace {

NodeInfo Node(const std::string& addr, uint16_t port) {
  NodeInfo n;
  n.addr = addr;
  n.port = port;
  n.zone = port;
  return n;
}

Entry Join(const std::string& nonce, const NodeInfo& node) {
  Entry e;
  e.type = Entry::Type::kJoin;
  e.nonce = nonce;
  e.node = node;
  return e;
}

Entry Leave(const std::string& nonce) {
  Entry e;
  e.type = Entry::Type::kLeave;
  e.nonce = nonce;
  return e;
}

Entry Msg(const std::string& nonce, uint64_t counter, const std::string& payload) {
  Entry e;
  e.type = Entry::Type::kNotify;
  e.nonce = nonce;
  e.counter = counter;
  e.payload = payload;
  return e;
}

TEST(ZkSpec, HostsAndTimeout) {
  std::string err;
  auto s = ParseSpec("zookeeper:10.0.0.1:2181,10.0.0.2:2181,timeout=5", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->hosts, "10.0.0.1:2181,10.0.0.2:2181");
  EXPECT_EQ(s->timeout_ms, 5000);

  s = ParseSpec("zookeeper:zk.example:2181", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->hosts, "zk.example:2181");
  EXPECT_EQ(s->timeout_ms, 30000);  // sheepdog's default

  s = ParseSpec("zookeeper:timeout=7,127.0.0.1:2181", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->timeout_ms, 7000);
}

TEST(ZkSpec, Malformed) {
  std::string err;
  for (const char* bad : {"zookeeper:", "zookeeper:host", "zookeeper:host:0", "zookeeper:host:x",
                          "zookeeper:host:70000", "zookeeper:h:1,timeout=0",
                          "zookeeper:h:1,timeout=abc", "zookeeper:h:1,,h:2", "zookeeper::2181",
                          "zookeeper:h:1/chroot", "zookeeper:h:1,foo=bar", "local:/tmp/x"}) {
    err.clear();
    EXPECT_FALSE(ParseSpec(bad, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(ZkSpec, MakeDriverKnowsZookeeper) {
  std::string err;
  EXPECT_NE(MakeDriver("zookeeper:127.0.0.1:2181,timeout=5", err), nullptr) << err;
  EXPECT_EQ(MakeDriver("zookeeper:127.0.0.1", err), nullptr);
  EXPECT_NE(err.find("HOST:PORT"), std::string::npos) << err;
}

TEST(ZkNames, MemberAndQueue) {
  const NodeInfo n = Node("10.1.2.3", 7000);
  EXPECT_EQ(MemberName(n, "00ab"), "10.1.2.3:7000#00ab");
  EXPECT_EQ(NonceOfMember("10.1.2.3:7000#00ab"), "00ab");
  EXPECT_EQ(NonceOfMember("::1:7000#ff"), "ff");
  EXPECT_FALSE(NonceOfMember("10.1.2.3:7000"));
  EXPECT_FALSE(NonceOfMember("10.1.2.3:7000#"));

  EXPECT_EQ(QueueSeq("e0000000000"), 1u);
  EXPECT_EQ(QueueSeq("e0000000041"), 42u);
  EXPECT_EQ(QueueSeq("e2147483647"), 2147483648u);
  EXPECT_FALSE(QueueSeq("e000000004"));
  EXPECT_FALSE(QueueSeq("x0000000041"));
  EXPECT_FALSE(QueueSeq("e00000000a1"));
  EXPECT_FALSE(QueueSeq("lock"));
}

TEST(ZkEntry, RoundTrip) {
  for (const Entry& e : {Join("n1", Node("10.0.0.1", 7000)), Leave("n2"),
                         Msg("n3", 9, R"({"type":"new_vdi","name":"a\"b"})")}) {
    const auto d = Entry::Decode(e.Encode());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, e.type);
    EXPECT_EQ(d->nonce, e.nonce);
    EXPECT_EQ(d->node, e.node);
    EXPECT_EQ(d->counter, e.counter);
    EXPECT_EQ(d->payload, e.payload);
  }
  EXPECT_FALSE(Entry::Decode("not json"));
  EXPECT_FALSE(Entry::Decode(R"({"t":"dance","n":"x"})"));
  EXPECT_FALSE(Entry::Decode(R"({"t":"join","n":"x"})"));
}

TEST(ZkMembership, JoinsLeavesAndMessagesInOrder) {
  Membership m;
  const NodeInfo a = Node("10.0.0.1", 7000), b = Node("10.0.0.2", 7000);
  auto ev = m.Apply(5, Join("A", a), "B");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, ClusterEvent::Type::kJoin);
  EXPECT_EQ(ev->seq, 5u);
  EXPECT_FALSE(ev->is_self);
  ev = m.Apply(6, Join("B", b), "B");
  ASSERT_TRUE(ev);
  EXPECT_TRUE(ev->is_self);
  EXPECT_EQ(ev->members, (std::vector<NodeInfo>{a, b}));

  ev = m.Apply(7, Msg("A", 1, "x"), "B");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, ClusterEvent::Type::kNotify);
  EXPECT_EQ(ev->node, a);
  EXPECT_EQ(ev->payload, "x");
  EXPECT_FALSE(m.Apply(8, Msg("A", 1, "x"), "B")) << "a retried message is applied once";
  EXPECT_TRUE(m.Apply(9, Msg("A", 2, "y"), "B"));
  EXPECT_FALSE(m.Apply(10, Msg("Z", 1, "z"), "B")) << "a non-member's message is ignored";

  ev = m.Apply(11, Leave("A"), "B");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, ClusterEvent::Type::kLeave);
  EXPECT_EQ(ev->node, a);
  EXPECT_EQ(ev->members, std::vector<NodeInfo>{b});
  EXPECT_FALSE(m.Apply(12, Leave("A"), "B")) << "a second leave (from another member) is ignored";
  EXPECT_FALSE(m.Apply(13, Msg("A", 3, "late"), "B"));
}

TEST(ZkMembership, OneIncarnationOfANodeAtATime) {
  Membership m;
  const NodeInfo a = Node("10.0.0.1", 7000);
  ASSERT_TRUE(m.Apply(1, Join("A1", a), "x"));
  EXPECT_FALSE(m.Apply(2, Join("A1", a), "x")) << "a retried join is applied once";
  EXPECT_FALSE(m.Apply(3, Join("A2", a), "x")) << "the restarted node waits for the old to leave";
  ASSERT_TRUE(m.Apply(4, Leave("A1"), "x"));
  ASSERT_TRUE(m.Apply(5, Join("A2", a), "x"));
  ASSERT_EQ(m.members().size(), 1u);
  EXPECT_EQ(m.members()[0].nonce, "A2");
  Entry found = Join("F", Node("10.0.0.9", 7000));
  found.type = Entry::Type::kFound;
  EXPECT_FALSE(m.Apply(6, found, "x")) << "members ignore a founding";
  EXPECT_EQ(m.members().size(), 1u);
}

TEST(ZkMembership, SnapshotRestoresCountersToo) {
  Membership m;
  ASSERT_TRUE(m.Apply(1, Join("A", Node("10.0.0.1", 7000)), "x"));
  ASSERT_TRUE(m.Apply(2, Join("B", Node("10.0.0.2", 7001)), "x"));
  ASSERT_TRUE(m.Apply(3, Msg("A", 4, "p"), "x"));
  Membership copy;
  ASSERT_TRUE(copy.FromJson(m.ToJson()));
  ASSERT_EQ(copy.members().size(), 2u);
  EXPECT_EQ(copy.members()[0].node, m.members()[0].node);
  EXPECT_EQ(copy.members()[1].node.zone, 7001u);
  // Both apply the same later entries identically: the duplicate of message 4 is dropped.
  for (Membership* x : {&m, &copy}) {
    EXPECT_FALSE(x->Apply(4, Msg("A", 4, "p"), "x"));
    EXPECT_TRUE(x->Apply(5, Msg("A", 5, "q"), "x"));
  }
  EXPECT_FALSE(copy.FromJson("{bad"));
}

}  // namespace
}  // namespace kelpie::cluster::zk
