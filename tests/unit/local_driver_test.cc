// LocalDriver: several drivers on one file (in one process, as separate members) see the same
// joins, messages and leaves in the same total order; a torn record at the tail is cut off.
#include "cluster/local_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

namespace kelpie::cluster {
namespace {

namespace fs = std::filesystem;

// What one member saw, as comparable text: "<seq> J|L|N <node> <payload>".
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;

  void Add(const ClusterEvent& e) {
    const char* t = e.type == ClusterEvent::Type::kJoin    ? "J"
                    : e.type == ClusterEvent::Type::kLeave ? "L"
                                                           : "N";
    std::lock_guard lk(mu);
    events.push_back(std::to_string(e.seq) + " " + t + " " + e.node.id() + " " +
                     (e.type == ClusterEvent::Type::kNotify ? e.payload : "") +
                     " members=" + std::to_string(e.members.size()));
    cv.notify_all();
  }
  // Waits (bounded) until `pred` holds over the events; returns whether it did.
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, std::chrono::seconds(20), [&] { return pred(events); });
  }
  std::vector<std::string> Snapshot() {
    std::lock_guard lk(mu);
    return events;
  }
};

class LocalDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() /
            ("kelpie-shm-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove(path_);
  }
  void TearDown() override { fs::remove(path_); }

  std::unique_ptr<LocalDriver> StartNode(uint16_t port, Seen& seen) {
    auto d = std::make_unique<LocalDriver>(path_.string());
    EXPECT_TRUE(d->Start(
        NodeInfo{"127.0.0.1", port, port, 128}, [] { return std::string("snap"); },
        [&seen](const ClusterEvent& e) { seen.Add(e); }));
    return d;
  }

  fs::path path_;
};

size_t CountType(const std::vector<std::string>& ev, const std::string& type) {
  size_t n = 0;
  for (const auto& e : ev) n += e.find(" " + type + " ") != std::string::npos;
  return n;
}

TEST_F(LocalDriverTest, MembersSeeOneTotalOrder) {
  Seen s1, s2, s3;
  auto a = StartNode(7001, s1);
  ASSERT_TRUE(s1.WaitFor([](auto& ev) { return CountType(ev, "J") == 1; }));
  auto b = StartNode(7002, s2);
  ASSERT_TRUE(s2.WaitFor([](auto& ev) { return CountType(ev, "J") == 1; }));
  auto c = StartNode(7003, s3);
  ASSERT_TRUE(s3.WaitFor([](auto& ev) { return CountType(ev, "J") == 1; }));

  // Messages from all three at once.
  std::vector<std::thread> senders;
  for (auto* d : {a.get(), b.get(), c.get()}) {
    senders.emplace_back([d] {
      for (int i = 0; i < 20; ++i)
        d->Notify("msg" + std::to_string(i) + "@" + std::to_string(uintptr_t(d) % 1000));
    });
  }
  for (auto& t : senders) t.join();
  for (Seen* s : {&s1, &s2, &s3}) {
    ASSERT_TRUE(s->WaitFor([](auto& ev) { return CountType(ev, "N") == 60; }));
  }
  // Everyone saw the same events from its own join onwards, in the same order.
  const auto e1 = s1.Snapshot(), e2 = s2.Snapshot(), e3 = s3.Snapshot();
  ASSERT_EQ(e1.size(), e2.size() + 1);  // a also saw b's join
  ASSERT_EQ(e2.size(), e3.size() + 1);  // b also saw c's join
  EXPECT_TRUE(std::equal(e3.begin(), e3.end(), e1.end() - e3.size()));
  EXPECT_TRUE(std::equal(e3.begin(), e3.end(), e2.end() - e3.size()));
  EXPECT_NE(e3.front().find("members=3"), std::string::npos);

  // A graceful leave reaches the others, once.
  b->Stop();
  for (Seen* s : {&s1, &s3}) {
    ASSERT_TRUE(s->WaitFor([](auto& ev) { return CountType(ev, "L") == 1; }));
    EXPECT_NE(s->Snapshot().back().find("127.0.0.1:7002"), std::string::npos);
    EXPECT_NE(s->Snapshot().back().find("members=2"), std::string::npos);
  }
  a->Stop();
  c->Stop();
}

TEST_F(LocalDriverTest, TornTailIsCutOff) {
  Seen s1;
  {
    auto a = StartNode(7001, s1);
    ASSERT_TRUE(s1.WaitFor([](auto& ev) { return CountType(ev, "J") == 1; }));
    a->Notify("before");
    ASSERT_TRUE(s1.WaitFor([](auto& ev) { return CountType(ev, "N") == 1; }));
    // A writer that died mid-append left half a record behind.
    std::FILE* f = std::fopen(path_.c_str(), "ab");
    ASSERT_NE(f, nullptr);
    const char junk[] = "\x31\x50\x4c\x4b\xff\x00\x00\x00partial";
    std::fwrite(junk, 1, sizeof(junk) - 1, f);
    std::fclose(f);
    a->Notify("after");
    ASSERT_TRUE(s1.WaitFor([](auto& ev) { return CountType(ev, "N") == 2; }));
    EXPECT_NE(s1.Snapshot().back().find("after"), std::string::npos);
    a->Stop();
  }
}

}  // namespace
}  // namespace kelpie::cluster
