// The cross-target guarantee any caching or sharing of shared-state loads must keep: a reservation
// another target took and acknowledged before a command arrived binds that command, even while an
// older load is still in flight and the backend's cache still holds the state from before (the
// command's I/O fence is found stale and it reruns on a fresh load).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

// A target process's backend over a MemStore whose LoadShared can be held after it has read the
// state (a load in flight).
class GatedBackend final : public BlockBackend {
 public:
  explicit GatedBackend(std::shared_ptr<MemStore> store)
      : store_(store), inner_(MakeMemBackend(std::move(store))) {}

  // The next LoadShared reads the state, then waits for Release(); `entered` is set meanwhile.
  std::future<void> HoldNextLoad() {
    std::lock_guard lk(mu_);
    hold_ = true;
    entered_ = std::promise<void>();
    return entered_.get_future();
  }
  void Release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

  uint64_t Size() override { return inner_->Size(); }
  IoStatus Read(uint64_t o, std::span<uint8_t> out, uint64_t f) override {
    return inner_->Read(o, out, f);
  }
  IoStatus Write(uint64_t o, std::span<const uint8_t> d, uint64_t f, bool wb) override {
    return inner_->Write(o, d, f, wb);
  }
  IoStatus Discard(uint64_t o, uint64_t n, uint64_t f) override { return inner_->Discard(o, n, f); }
  IoStatus Flush(uint64_t f) override { return inner_->Flush(f); }
  IoStatus CompareAndWrite(uint64_t o, std::span<const uint8_t> c, std::span<const uint8_t> d,
                           uint64_t* at, uint64_t f) override {
    return inner_->CompareAndWrite(o, c, d, at, f);
  }
  IoStatus MapStatus(uint64_t o, uint64_t n, bool* m, uint64_t* r, uint64_t f) override {
    return inner_->MapStatus(o, n, m, r, f);
  }
  IoStatus LoadShared(bool may_cache, SharedLoad* out) override {
    const IoStatus st = inner_->LoadShared(may_cache, out);
    std::unique_lock lk(mu_);
    if (hold_) {
      hold_ = false;
      entered_.set_value();
      cv_.wait(lk, [&] { return released_; });
    }
    return st;
  }
  IoStatus StoreShared(uint64_t expect, const std::string& state, uint64_t* v,
                       uint64_t* f) override {
    return inner_->StoreShared(expect, state, v, f);
  }
  uint64_t LuIdentity() override { return inner_->LuIdentity(); }
  std::string LuName() override { return inner_->LuName(); }

 private:
  std::shared_ptr<MemStore> store_;
  std::unique_ptr<BlockBackend> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false, released_ = false;
  std::promise<void> entered_;
};

std::future<ScsiResult> Submit(LogicalUnit& lu, const Nexus& n, Cmd c) {
  auto done = std::make_shared<std::promise<ScsiResult>>();
  auto f = done->get_future();
  lu.Execute(MakeCommand(n, std::move(c)), [done](ScsiResult r) { done->set_value(std::move(r)); });
  return f;
}

class ScsiSharedLoadTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemStore> store = MakeMemStore("coalesce", 16ull << 20);
  GatedBackend* gated = nullptr;
  std::unique_ptr<LogicalUnit> a, b;
  Nexus na = MakeNexus("iqn.test:one", 1, "800000000001");
  Nexus nb = MakeNexus("iqn.test:two", 2, "800000000002");

  void SetUp() override {
    auto backend = std::make_unique<GatedBackend>(store);
    gated = backend.get();
    LuConfig cfg;
    cfg.rel_port = 1;
    cfg.tpg = 1;
    cfg.target_name = "iqn.2024-01.io.kelpie:test";
    cfg.workers = 8;
    a = std::make_unique<LogicalUnit>(std::move(backend), cfg);
    b = MakeLu(store, 2, 2);
    a->NexusLogin(na);
    b->NexusLogin(nb);
    DrainUnitAttentions(*a, na);
    DrainUnitAttentions(*b, nb);
  }
};

TEST_F(ScsiSharedLoadTest, ACommandNeverUsesALoadSentBeforeItArrived) {
  // A read's load has read the (unreserved) state and is still in flight...
  std::future<void> entered = gated->HoldNextLoad();
  auto read = Submit(*a, na, Cmd{Cdb10(0x28, 1, 1), kBs, {}, true, false});
  ASSERT_EQ(entered.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // ...when another target takes a WRITE EXCLUSIVE reservation and acknowledges it.
  ASSERT_EQ(RunOut(*b, nb, ProutCdb(0, 0), ProutParams(0, 0x42)).status, status::kGood);
  ASSERT_EQ(RunOut(*b, nb, ProutCdb(1, 1), ProutParams(0x42, 0)).status, status::kGood);
  // A write arriving now must see the reservation, though a load is still in flight.
  std::vector<uint8_t> data(kBs, 7);
  auto write = Submit(*a, na, Cmd{Cdb10(0x2A, 1, 1), kBs, data, false, true});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  gated->Release();
  EXPECT_EQ(read.get().status, status::kGood);
  EXPECT_EQ(write.get().status, status::kReservationConflict);
}

}  // namespace
}  // namespace kelpie::scsi::testing
