// The shared LU state: serialization, unit attention queue rules, nexus bookkeeping, the CAS
// update loop under contention, and LogicalUnit lifetime (draining work on destruction).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "iscsi/scsi/lu_state.h"
#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

TEST(ScsiLuStateTest, RoundTripsThroughJson) {
  SharedState s;
  s.pr_generation = 7;
  s.registrations["n1"] = Registration{0xFFFFFFFFFFFFFFFFull, "iqn.a", "800000000001", 3};
  s.reservation = PrReservation{"n1", pr_type::kWriteExclusiveRegistrantsOnly, 0};
  s.aptpl = true;
  s.spc2_holder = "n2";
  s.AddNexus("n1");
  s.AddNexus("n2");
  s.QueueUnitAttention("n1", ua::kCapacityChanged);
  s.AddPort({1, 1});
  s.AddPort({2, 9});
  s.capacity_bytes = 1ull << 40;

  SharedState t = ParseSharedState(SerializeSharedState(s));
  EXPECT_EQ(t.pr_generation, 7u);
  ASSERT_EQ(t.registrations.size(), 1u);
  EXPECT_EQ(t.registrations["n1"].key, 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ(t.registrations["n1"].isid, "800000000001");
  EXPECT_EQ(t.registrations["n1"].rel_port, 3);
  ASSERT_TRUE(t.reservation);
  EXPECT_EQ(t.reservation->holder, "n1");
  EXPECT_EQ(t.reservation->type, pr_type::kWriteExclusiveRegistrantsOnly);
  EXPECT_TRUE(t.aptpl);
  EXPECT_EQ(t.spc2_holder, "n2");
  EXPECT_EQ(t.nexuses, s.nexuses);
  EXPECT_EQ(t.login_seq, s.login_seq);
  EXPECT_EQ(t.PopUnitAttention("n1"), ua::kCapacityChanged);
  EXPECT_EQ(t.ports, s.ports);
  EXPECT_EQ(t.capacity_bytes, 1ull << 40);

  EXPECT_EQ(ParseSharedState("").pr_generation, 0u);
  EXPECT_TRUE(ParseSharedState("{not json").registrations.empty());
}

TEST(ScsiLuStateTest, UnitAttentionQueueRules) {
  SharedState s;
  s.QueueUnitAttention("stranger", ua::kPowerOnOrReset);  // not logged in: nothing
  EXPECT_FALSE(s.HasUnitAttention("stranger"));
  s.AddNexus("n");
  s.QueueUnitAttention("n", ua::kPowerOnOrReset);
  s.QueueUnitAttention("n", ua::kPowerOnOrReset);  // duplicate
  s.QueueUnitAttention("n", ua::kLogicalUnitReset);
  s.QueueUnitAttention("n", ua::kCapacityChanged);
  s.QueueUnitAttention("n", ua::kReservationsReleased);
  s.QueueUnitAttention("n", ua::kRegistrationsPreempted);  // fifth: over the cap
  EXPECT_EQ(s.PopUnitAttention("n"), ua::kPowerOnOrReset);
  EXPECT_EQ(s.PopUnitAttention("n"), ua::kLogicalUnitReset);
  EXPECT_EQ(s.PopUnitAttention("n"), ua::kCapacityChanged);
  EXPECT_EQ(s.PopUnitAttention("n"), ua::kReservationsReleased);
  EXPECT_EQ(s.PopUnitAttention("n"), std::nullopt);
  EXPECT_TRUE(s.unit_attentions.empty());
  s.QueueUnitAttention("n", ua::kPowerOnOrReset);
  s.RemoveNexus("n");
  EXPECT_FALSE(s.HasUnitAttention("n"));
}

TEST(ScsiLuStateTest, ForgetsTheOldestNexusesBeyondTheCap) {
  SharedState s;
  for (size_t i = 0; i < SharedState::kMaxNexuses + 10; ++i) s.AddNexus("n" + std::to_string(i));
  EXPECT_EQ(s.nexuses.size(), SharedState::kMaxNexuses);
  EXPECT_FALSE(s.nexuses.contains("n0"));
  EXPECT_TRUE(s.nexuses.contains("n" + std::to_string(SharedState::kMaxNexuses + 9)));
}

TEST(ScsiLuStateTest, CompareAndSwapLoopLosesNoUpdate) {
  auto store = MakeMemStore("cas", 1 << 20);
  constexpr int kThreads = 8, kIncrements = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto backend = MakeMemBackend(store);
      for (int i = 0; i < kIncrements; ++i) {
        SharedSnapshot snap;
        if (LoadSharedSnapshot(*backend, &snap) != IoStatus::kOk ||
            UpdateSharedState(*backend, &snap, [](SharedState& s) {
              ++s.pr_generation;
              return true;
            }) != IoStatus::kOk) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  SharedSnapshot final_state;
  ASSERT_EQ(LoadSharedSnapshot(*store, &final_state), IoStatus::kOk);
  EXPECT_EQ(final_state.state.pr_generation + failures.load(), uint32_t{kThreads * kIncrements});
  EXPECT_EQ(failures.load(), 0);
}

TEST(ScsiLuStateTest, NoChangeStoresNothing) {
  auto store = MakeMemStore("nochange", 1 << 20);
  SharedSnapshot snap;
  ASSERT_EQ(LoadSharedSnapshot(*store, &snap), IoStatus::kOk);
  EXPECT_EQ(UpdateSharedState(*store, &snap, [](SharedState&) { return false; }), IoStatus::kOk);
  EXPECT_EQ(store->store_shared_calls(), 0u);
}

TEST(ScsiLuStateTest, NexusGoneForgetsTheNexus) {
  auto store = MakeMemStore("gone", 1 << 20);
  auto lu = MakeLu(store);
  Nexus n = MakeNexus("iqn.test:gone");
  lu->NexusLogin(n);
  SharedSnapshot snap;
  ASSERT_EQ(LoadSharedSnapshot(*store, &snap), IoStatus::kOk);
  EXPECT_TRUE(snap.state.nexuses.contains(n.Id()));
  EXPECT_TRUE(snap.state.HasUnitAttention(n.Id()));
  ASSERT_EQ(snap.state.ports.size(), 1u);
  lu->NexusGone(n);
  ASSERT_EQ(LoadSharedSnapshot(*store, &snap), IoStatus::kOk);
  EXPECT_FALSE(snap.state.nexuses.contains(n.Id()));
  EXPECT_FALSE(snap.state.HasUnitAttention(n.Id()));
}

TEST(ScsiLuStateTest, DestructionRunsEveryQueuedCommand) {
  auto store = MakeMemStore("drain", 1 << 20);
  std::atomic<int> done{0};
  {
    auto lu = MakeLu(store, 1, 1, /*workers=*/2);
    for (int i = 0; i < 500; ++i) {
      ScsiCommand cmd;
      cmd.cdb = {0x00, 0, 0, 0, 0, 0};
      cmd.nexus = MakeNexus("iqn.test:drain");
      lu->Execute(std::move(cmd), [&done](ScsiResult) { ++done; });
    }
  }
  EXPECT_EQ(done.load(), 500);
}

}  // namespace
}  // namespace kelpie::scsi::testing
