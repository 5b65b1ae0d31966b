// Two LogicalUnits over one MemStore = two target processes of one LU: identity, persistent and
// SPC-2 reservations, unit attentions, port groups and COMPARE AND WRITE atomicity must hold
// across them.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "scsi_test_util.h"

namespace kelpie::scsi::testing {
namespace {

constexpr uint8_t kWe = 1, kEa = 3, kWeRo = 5, kEaRo = 6, kWeAr = 7, kEaAr = 8;

std::vector<uint8_t> PrinCdb(uint8_t sa, uint16_t alloc) {
  std::vector<uint8_t> c(10, 0);
  c[0] = 0x5E;
  c[1] = sa;
  PutBe16(c, 7, alloc);
  return c;
}

class ScsiMultipathTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemStore> store = MakeMemStore("mpath", 16ull << 20);
  std::unique_ptr<LogicalUnit> a = MakeLu(store, /*rel_port=*/1, /*tpg=*/1);
  std::unique_ptr<LogicalUnit> b = MakeLu(store, /*rel_port=*/2, /*tpg=*/2);
  Nexus na = MakeNexus("iqn.test:one", 1, "800000000001");
  Nexus nb = MakeNexus("iqn.test:two", 2, "800000000002");

  void SetUp() override {
    a->NexusLogin(na);
    b->NexusLogin(nb);
    ASSERT_EQ(DrainUnitAttentions(*a, na), std::vector<uint16_t>{0x2900});
    ASSERT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2900});
  }

  uint8_t Prout(LogicalUnit& lu, const Nexus& n, uint8_t sa, uint8_t type, uint64_t key,
                uint64_t sa_key) {
    return RunOut(lu, n, ProutCdb(sa, type), ProutParams(key, sa_key)).status;
  }
  uint8_t Read(LogicalUnit& lu, const Nexus& n) {
    return RunIn(lu, n, Cdb10(0x28, 1, 1), kBs).status;
  }
  uint8_t Write(LogicalUnit& lu, const Nexus& n) {
    return RunOut(lu, n, Cdb10(0x2A, 1, 1), std::vector<uint8_t>(kBs, 0x42)).status;
  }
};

std::vector<uint8_t> LuDesignator(const std::vector<uint8_t>& page83) {
  for (size_t off = 4; off + 4 <= page83.size(); off += 4 + page83[off + 3]) {
    if ((page83[off + 1] & 0x30) == 0) {
      return std::vector<uint8_t>(page83.begin() + off, page83.begin() + off + 4 + page83[off + 3]);
    }
  }
  return {};
}

TEST_F(ScsiMultipathTest, DeviceIdentificationMatchesAcrossProcesses) {
  ScsiResult pa = RunIn(*a, na, Inquiry(true, 0x83, 255), 255);
  ScsiResult pb = RunIn(*b, nb, Inquiry(true, 0x83, 255), 255);
  ASSERT_EQ(pa.status, status::kGood);
  EXPECT_EQ(GetBe16(pa.data_in, 2) + 4u, pa.data_in.size());
  auto da = LuDesignator(pa.data_in), db = LuDesignator(pb.data_in);
  ASSERT_EQ(da.size(), 20u);
  EXPECT_EQ(da[1] & 0x0F, 3);  // NAA
  EXPECT_EQ(da[4] >> 4, 6);    // NAA 6
  EXPECT_EQ(da, db);
  EXPECT_NE(pa.data_in, pb.data_in);  // relative port and port group differ
  EXPECT_EQ(RunIn(*a, na, Inquiry(true, 0x80, 255), 255).data_in,
            RunIn(*b, nb, Inquiry(true, 0x80, 255), 255).data_in);
  // A different LU has a different designator.
  auto other = MakeLu(MakeMemStore("other", 1 << 20));
  EXPECT_NE(LuDesignator(RunIn(*other, na, Inquiry(true, 0x83, 255), 255).data_in), da);
}

TEST_F(ScsiMultipathTest, ReportTargetPortGroupsListsBothProcesses) {
  std::vector<uint8_t> cdb(12, 0);
  cdb[0] = 0xA3;
  cdb[1] = 0x0A;
  PutBe32(cdb, 6, 1024);
  ScsiResult r = RunIn(*b, nb, cdb, 1024);
  ASSERT_EQ(r.status, status::kGood);
  ASSERT_EQ(r.data_in.size(), 4u + 2 * 12);
  EXPECT_EQ(GetBe32(r.data_in, 0), 24u);
  EXPECT_EQ(GetBe16(r.data_in, 6), 1);
  EXPECT_EQ(r.data_in[11], 1);
  EXPECT_EQ(GetBe16(r.data_in, 14), 1);
  EXPECT_EQ(GetBe16(r.data_in, 18), 2);
  EXPECT_EQ(GetBe16(r.data_in, 26), 2);
}

TEST_F(ScsiMultipathTest, PersistentReservationIsSharedAcrossProcesses) {
  ASSERT_EQ(Prout(*a, na, 0, 0, 0, 0xAAAA), status::kGood);    // REGISTER
  ASSERT_EQ(Prout(*a, na, 1, kWe, 0xAAAA, 0), status::kGood);  // RESERVE WE

  ScsiResult keys = RunIn(*b, nb, PrinCdb(0, 64), 64);
  ASSERT_EQ(keys.status, status::kGood);
  EXPECT_EQ(GetBe32(keys.data_in, 0), 1u);  // one REGISTER so far
  EXPECT_EQ(GetBe32(keys.data_in, 4), 8u);
  EXPECT_EQ(GetBe64(keys.data_in, 8), 0xAAAAu);
  ScsiResult res = RunIn(*b, nb, PrinCdb(1, 64), 64);
  ASSERT_EQ(res.data_in.size(), 24u);
  EXPECT_EQ(GetBe64(res.data_in, 8), 0xAAAAu);
  EXPECT_EQ(res.data_in[21], kWe);

  EXPECT_EQ(Write(*b, nb), status::kReservationConflict);
  EXPECT_EQ(Read(*b, nb), status::kGood);
  EXPECT_EQ(Write(*a, na), status::kGood);
  EXPECT_EQ(RunNoData(*b, nb, {0x00, 0, 0, 0, 0, 0}).status, status::kGood);

  ASSERT_EQ(Prout(*a, na, 2, kWe, 0xAAAA, 0), status::kGood);  // RELEASE
  EXPECT_EQ(Write(*b, nb), status::kGood);
  EXPECT_EQ(RunIn(*b, nb, PrinCdb(1, 64), 64).data_in.size(), 8u);
  EXPECT_EQ(GetBe32(RunIn(*b, nb, PrinCdb(0, 64), 64).data_in, 0), 1u);  // no generation bump
}

TEST_F(ScsiMultipathTest, ReservationTypeAccessMatrix) {
  struct Row {
    uint8_t type;
    uint8_t reg_read, reg_write, unreg_read, unreg_write;
    bool survives_holder_unregister;
  };
  constexpr uint8_t G = status::kGood, C = status::kReservationConflict;
  const Row rows[] = {
      {kWe, G, C, G, C, false},   {kEa, C, C, C, C, false},  {kWeRo, G, G, G, C, false},
      {kEaRo, G, G, C, C, false}, {kWeAr, G, G, G, C, true}, {kEaAr, G, G, C, C, true},
  };
  Nexus unregistered = MakeNexus("iqn.test:three", 2, "800000000003");
  b->NexusLogin(unregistered);
  DrainUnitAttentions(*b, unregistered);
  for (const Row& row : rows) {
    SCOPED_TRACE(int(row.type));
    ASSERT_EQ(Prout(*a, na, 0, 0, 0, 0x1), status::kGood);
    ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x2), status::kGood);
    ASSERT_EQ(Prout(*a, na, 1, row.type, 0x1, 0), status::kGood);
    EXPECT_EQ(Read(*b, nb), row.reg_read);
    EXPECT_EQ(Write(*b, nb), row.reg_write);
    EXPECT_EQ(Read(*b, unregistered), row.unreg_read);
    EXPECT_EQ(Write(*b, unregistered), row.unreg_write);
    EXPECT_EQ(Read(*a, na), G);
    EXPECT_EQ(Write(*a, na), G);
    // The holder unregisters: the reservation goes, except for all-registrants types.
    ASSERT_EQ(Prout(*a, na, 0, 0, 0x1, 0), status::kGood);
    const bool registrants_only = row.type == kWeRo || row.type == kEaRo;
    EXPECT_EQ(DrainUnitAttentions(*b, nb),
              registrants_only ? std::vector<uint16_t>{0x2A04} : std::vector<uint16_t>{});
    ScsiResult res = RunIn(*b, nb, PrinCdb(1, 64), 64);
    EXPECT_EQ(res.data_in.size(), row.survives_holder_unregister ? 24u : 8u);
    if (row.survives_holder_unregister) {
      EXPECT_EQ(GetBe64(res.data_in, 8), 0u);
    }
    // Clean up: CLEAR from b (still registered) and drop the UAs it queued.
    ASSERT_EQ(Prout(*b, nb, 3, 0, 0x2, 0), status::kGood);
    DrainUnitAttentions(*a, na);
    DrainUnitAttentions(*b, nb);
    DrainUnitAttentions(*b, unregistered);
  }
}

TEST_F(ScsiMultipathTest, RegisterRulesAndGeneration) {
  EXPECT_EQ(Prout(*a, na, 0, 0, 0x5, 0x6), status::kReservationConflict);  // not registered
  EXPECT_EQ(Prout(*a, na, 0, 0, 0, 0x6), status::kGood);
  EXPECT_EQ(Prout(*a, na, 0, 0, 0x7, 0x8), status::kReservationConflict);  // wrong key
  EXPECT_EQ(Prout(*a, na, 6, 0, 0x7, 0x8), status::kGood);                 // IGNORE EXISTING KEY
  EXPECT_EQ(Prout(*b, nb, 1, kWe, 0, 0), status::kReservationConflict);    // RESERVE unregistered
  ScsiResult keys = RunIn(*a, na, PrinCdb(0, 64), 64);
  EXPECT_EQ(GetBe32(keys.data_in, 0), 2u);
  EXPECT_EQ(GetBe64(keys.data_in, 8), 0x8u);
  // ADDITIONAL LENGTH is not cut by a short allocation length.
  ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x9), status::kGood);
  ScsiResult cut = RunIn(*a, na, PrinCdb(0, 12), 12);
  EXPECT_EQ(cut.data_in.size(), 12u);
  EXPECT_EQ(GetBe32(cut.data_in, 4), 16u);

  ScsiResult caps = RunIn(*a, na, PrinCdb(2, 8), 8);
  EXPECT_EQ(GetBe16(caps.data_in, 0), 8);
  EXPECT_EQ(GetBe16(caps.data_in, 4), 0xEA01);
  ScsiResult full = RunIn(*a, na, PrinCdb(3, 1024), 1024);
  ASSERT_EQ(full.status, status::kGood);
  EXPECT_EQ(GetBe32(full.data_in, 4) + 8u, full.data_in.size());
  EXPECT_EQ(SenseOf(RunIn(*a, na, PrinCdb(4, 64), 64)), 0x052400u);
  EXPECT_EQ(SenseOf(RunOut(*a, na, ProutCdb(7), ProutParams(0x8, 0))), 0x052400u);
  EXPECT_EQ(SenseOf(RunOut(*a, na, ProutCdb(0), ProutParams(0x8, 0x1, 0x04))), 0x052600u);
}

TEST_F(ScsiMultipathTest, PreemptAndClearQueueUnitAttentions) {
  ASSERT_EQ(Prout(*a, na, 0, 0, 0, 0x1), status::kGood);
  ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x2), status::kGood);
  const uint32_t gen = GetBe32(RunIn(*a, na, PrinCdb(0, 8), 8).data_in, 0);
  ASSERT_EQ(Prout(*a, na, 4, kWe, 0x1, 0x2), status::kGood);  // PREEMPT b, no reservation
  EXPECT_EQ(GetBe32(RunIn(*a, na, PrinCdb(0, 8), 8).data_in, 0), gen + 1);
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2A05});
  EXPECT_EQ(DrainUnitAttentions(*a, na), std::vector<uint16_t>{});
  EXPECT_EQ(Prout(*a, na, 4, kWe, 0x1, 0x2), status::kReservationConflict);  // nothing to preempt

  // Preempting the holder's key takes over the reservation.
  ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x2), status::kGood);
  ASSERT_EQ(Prout(*b, nb, 1, kEa, 0x2, 0), status::kGood);
  EXPECT_EQ(Read(*a, na), status::kReservationConflict);
  ASSERT_EQ(Prout(*a, na, 4, kWe, 0x1, 0x2), status::kGood);
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2A05});
  EXPECT_EQ(Write(*b, nb), status::kReservationConflict);
  EXPECT_EQ(Write(*a, na), status::kGood);
  EXPECT_EQ(RunIn(*b, nb, PrinCdb(1, 64), 64).data_in[21], kWe);

  ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x3), status::kGood);
  const uint32_t before_clear = GetBe32(RunIn(*a, na, PrinCdb(0, 8), 8).data_in, 0);
  ASSERT_EQ(Prout(*a, na, 3, 0, 0x1, 0), status::kGood);  // CLEAR
  EXPECT_EQ(GetBe32(RunIn(*a, na, PrinCdb(0, 8), 8).data_in, 0), before_clear + 1);
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2A03});
  EXPECT_EQ(GetBe32(RunIn(*b, nb, PrinCdb(0, 8), 8).data_in, 4), 0u);
  // RELEASE of a different type is an invalid release.
  ASSERT_EQ(Prout(*a, na, 0, 0, 0, 0x1), status::kGood);
  ASSERT_EQ(Prout(*a, na, 1, kWeRo, 0x1, 0), status::kGood);
  EXPECT_EQ(SenseOf(RunOut(*a, na, ProutCdb(2, kWe), ProutParams(0x1, 0))), 0x052604u);
}

TEST_F(ScsiMultipathTest, LunResetQueuesUnitAttentionOnEveryProcess) {
  EXPECT_EQ(a->Reset(LuReset::kLogicalUnitReset, na), 0);
  EXPECT_EQ(DrainUnitAttentions(*a, na), std::vector<uint16_t>{0x2903});
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2903});
  // INQUIRY does not consume a unit attention; REQUEST SENSE reports it as data.
  EXPECT_EQ(b->Reset(LuReset::kLogicalUnitReset, nb), 0);
  EXPECT_EQ(RunIn(*a, na, Inquiry(false, 0, 96), 96).status, status::kGood);
  ScsiResult sense = RunIn(*a, na, std::vector<uint8_t>{0x03, 0, 0, 0, 18, 0}, 18);
  ASSERT_EQ(sense.status, status::kGood);
  EXPECT_EQ(sense.data_in[2], 0x06);
  EXPECT_EQ(sense.data_in[12], 0x29);
  EXPECT_EQ(sense.data_in[13], 0x03);
  EXPECT_EQ(DrainUnitAttentions(*a, na), std::vector<uint16_t>{});
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2903});
  // At most 4 distinct UAs per nexus, never the same one twice.
  for (int i = 0; i < 6; ++i) a->Reset(LuReset::kLogicalUnitReset, na);
  EXPECT_EQ(DrainUnitAttentions(*a, na).size(), 1u);
}

TEST_F(ScsiMultipathTest, Spc2ReserveIsSharedAndEndsWithTheNexus) {
  const std::vector<uint8_t> reserve{0x16, 0, 0, 0, 0, 0}, release{0x17, 0, 0, 0, 0, 0};
  ASSERT_EQ(RunNoData(*a, na, reserve).status, status::kGood);
  EXPECT_EQ(RunNoData(*a, na, reserve).status, status::kGood);
  EXPECT_EQ(RunNoData(*b, nb, reserve).status, status::kReservationConflict);
  EXPECT_EQ(RunNoData(*b, nb, release).status, status::kGood);  // non-holder: no-op
  EXPECT_EQ(RunNoData(*b, nb, reserve).status, status::kReservationConflict);
  EXPECT_EQ(RunIn(*b, nb, std::vector<uint8_t>{0x1A, 0, 0x3F, 0, 255, 0}, 255).status,
            status::kReservationConflict);
  EXPECT_EQ(Read(*b, nb), status::kReservationConflict);
  EXPECT_EQ(RunIn(*b, nb, Inquiry(false, 0, 96), 96).status, status::kGood);
  a->NexusGone(na);
  EXPECT_EQ(RunNoData(*b, nb, reserve).status, status::kGood);
  // A LUN reset releases it too.
  EXPECT_EQ(a->Reset(LuReset::kLogicalUnitReset, na), 0);
  DrainUnitAttentions(*b, nb);
  a->NexusLogin(na);
  DrainUnitAttentions(*a, na);
  EXPECT_EQ(RunNoData(*a, na, reserve).status, status::kGood);
  // Persistent reservations supersede: with a registration RESERVE(6) conflicts.
  ASSERT_EQ(RunNoData(*a, na, release).status, status::kGood);
  ASSERT_EQ(Prout(*b, nb, 0, 0, 0, 0x1), status::kGood);
  EXPECT_EQ(RunNoData(*a, na, reserve).status, status::kReservationConflict);
}

TEST_F(ScsiMultipathTest, CapacityChangeIsAnnouncedOnceToEveryNexus) {
  store->Resize(32ull << 20);
  EXPECT_EQ(DrainUnitAttentions(*a, na), std::vector<uint16_t>{0x2A09});
  EXPECT_EQ(DrainUnitAttentions(*b, nb), std::vector<uint16_t>{0x2A09});
  ScsiResult rc = RunIn(*b, nb, Cdb16(0x9E, 0, 32, 0x10), 32);
  EXPECT_EQ(GetBe64(rc.data_in, 0), (32ull << 20) / kBs - 1);
}

TEST_F(ScsiMultipathTest, CommonPathLoadsSharedStateOnlyWhenItChanged) {
  ASSERT_EQ(Read(*a, na), status::kGood);  // the cache holds the current state
  const uint64_t loads = store->load_shared_calls(), stores = store->store_shared_calls();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Read(*a, na), status::kGood);
  EXPECT_EQ(store->load_shared_calls() - loads, 0u);  // fenced I/O proved the cache current
  EXPECT_EQ(store->store_shared_calls(), stores);
  RunIn(*a, na, Inquiry(false, 0, 96), 96);  // INQUIRY needs no shared state
  EXPECT_EQ(store->load_shared_calls() - loads, 0u);
  // Another target changes the shared state: A's next read finds its fence stale and reloads once.
  ASSERT_EQ(RunOut(*b, nb, ProutCdb(0, 0), ProutParams(0, 0x42)).status, status::kGood);
  ASSERT_EQ(Read(*a, na), status::kGood);
  EXPECT_EQ(store->load_shared_calls() - loads, 1u);
  ASSERT_EQ(Read(*a, na), status::kGood);
  EXPECT_EQ(store->load_shared_calls() - loads, 1u);
}

TEST_F(ScsiMultipathTest, CompareAndWriteIsAtomicAcrossProcesses) {
  std::vector<uint8_t> zero(kBs, 0), one(kBs, 1);
  ASSERT_EQ(RunOut(*a, na, Cdb10(0x2A, 0, 1), zero).status, status::kGood);
  auto caw = [](uint8_t from, uint8_t to) {
    std::vector<uint8_t> data(kBs, from);
    data.resize(2 * kBs, to);
    return data;
  };
  std::vector<uint8_t> cdb(16, 0);
  cdb[0] = 0x89;
  cdb[13] = 1;
  constexpr int kThreadsPerSide = 4, kAttempts = 300;
  std::atomic<int> flips_up{0}, flips_down{0}, unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerSide; ++t) {
    const bool up = t % 2 == 0;
    threads.emplace_back([&, up] {
      LogicalUnit& lu = up ? *a : *b;
      const Nexus& n = up ? na : nb;
      for (int i = 0; i < kAttempts; ++i) {
        ScsiResult r = RunOut(lu, n, cdb, up ? caw(0, 1) : caw(1, 0));
        if (r.status == status::kGood) {
          (up ? flips_up : flips_down)++;
        } else if (SenseOf(r) != 0x0E1D00u) {
          unexpected++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  ScsiResult now = RunIn(*a, na, Cdb10(0x28, 0, 1), kBs);
  const int ones = now.data_in == one ? 1 : 0;
  ASSERT_TRUE(now.data_in == one || now.data_in == zero);
  EXPECT_EQ(flips_up.load() - flips_down.load(), ones);
  EXPECT_GT(flips_up.load(), 0);
}

}  // namespace
}  // namespace kelpie::scsi::testing
