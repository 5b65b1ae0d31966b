// Helpers for the SCSI layer unit tests: LUs over a shared MemStore, synchronous command
// execution and CDB builders.
#pragma once
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/logical_unit.h"
#include "iscsi/scsi/mem_backend.h"

namespace kelpie::scsi::testing {

inline constexpr uint32_t kBs = 512;

inline Nexus MakeNexus(const std::string& initiator, uint16_t rel_port = 1,
                       const std::string& isid = "800000000001") {
  return Nexus{initiator, isid, rel_port};
}

// One simulated target process of the LU kept in `store`.
inline std::unique_ptr<LogicalUnit> MakeLu(std::shared_ptr<MemStore> store, uint16_t rel_port = 1,
                                           uint16_t tpg = 1, int workers = 4) {
  LuConfig cfg;
  cfg.rel_port = rel_port;
  cfg.tpg = tpg;
  cfg.target_name = "iqn.2024-01.io.kelpie:test";
  cfg.workers = workers;
  return std::make_unique<LogicalUnit>(MakeMemBackend(std::move(store)), cfg);
}

struct Cmd {
  std::vector<uint8_t> cdb;
  uint32_t edtl = 0;
  std::vector<uint8_t> data_out;
  bool read = false, write = false;
};

inline ScsiCommand MakeCommand(const Nexus& nexus, Cmd c) {
  ScsiCommand cmd;
  cmd.cdb = std::move(c.cdb);
  cmd.edtl = c.edtl;
  cmd.read = c.read;
  cmd.write = c.write;
  cmd.data_out = std::move(c.data_out);
  if (cmd.data_out.size() > cmd.edtl) cmd.data_out.resize(cmd.edtl);
  cmd.nexus = nexus;
  return cmd;
}

inline ScsiResult Run(LogicalUnit& lu, const Nexus& nexus, Cmd c) {
  ScsiCommand cmd = MakeCommand(nexus, std::move(c));
  std::promise<ScsiResult> done;
  auto result = done.get_future();
  lu.Execute(std::move(cmd), [&done](ScsiResult r) { done.set_value(std::move(r)); });
  return result.get();
}

// PERSISTENT RESERVE OUT (service action, type) with a 24-byte parameter list, and that list.
inline std::vector<uint8_t> ProutCdb(uint8_t sa, uint8_t type = 0) {
  std::vector<uint8_t> c(10, 0);
  c[0] = 0x5F;
  c[1] = sa;
  c[2] = type;
  PutBe32(c, 5, 24);
  return c;
}
inline std::vector<uint8_t> ProutParams(uint64_t key, uint64_t sa_key, uint8_t flags = 0) {
  std::vector<uint8_t> p(24, 0);
  PutBe64(p, 0, key);
  PutBe64(p, 8, sa_key);
  p[20] = flags;
  return p;
}

// A data-in command with EDTL = alloc.
inline ScsiResult RunIn(LogicalUnit& lu, const Nexus& n, std::vector<uint8_t> cdb, uint32_t edtl) {
  return Run(lu, n, Cmd{std::move(cdb), edtl, {}, true, false});
}
// A data-out command carrying `data` (EDTL = its size unless given).
inline ScsiResult RunOut(LogicalUnit& lu, const Nexus& n, std::vector<uint8_t> cdb,
                         std::vector<uint8_t> data, std::optional<uint32_t> edtl = {}) {
  uint32_t e = edtl.value_or(static_cast<uint32_t>(data.size()));
  return Run(lu, n, Cmd{std::move(cdb), e, std::move(data), false, e > 0});
}
inline ScsiResult RunNoData(LogicalUnit& lu, const Nexus& n, std::vector<uint8_t> cdb) {
  return Run(lu, n, Cmd{std::move(cdb), 0, {}, false, false});
}

// Runs TEST UNIT READY until GOOD (at most `tries`), returning the UAs seen (ASC<<8|ASCQ).
inline std::vector<uint16_t> DrainUnitAttentions(LogicalUnit& lu, const Nexus& n, int tries = 6) {
  std::vector<uint16_t> seen;
  for (int i = 0; i < tries; ++i) {
    ScsiResult r = RunNoData(lu, n, {0x00, 0, 0, 0, 0, 0});
    if (r.status == status::kGood) return seen;
    if (r.status != status::kCheckCondition || r.sense.size() < 14 || (r.sense[2] & 0xF) != 6) {
      seen.push_back(0xFFFF);
      return seen;
    }
    seen.push_back(static_cast<uint16_t>(r.sense[12] << 8 | r.sense[13]));
  }
  return seen;
}

inline std::vector<uint8_t> Cdb10(uint8_t op, uint32_t lba, uint16_t len, uint8_t flags = 0) {
  std::vector<uint8_t> c(10, 0);
  c[0] = op;
  c[1] = flags;
  PutBe32(c, 2, lba);
  PutBe16(c, 7, len);
  return c;
}
inline std::vector<uint8_t> Cdb12(uint8_t op, uint32_t lba, uint32_t len, uint8_t flags = 0) {
  std::vector<uint8_t> c(12, 0);
  c[0] = op;
  c[1] = flags;
  PutBe32(c, 2, lba);
  PutBe32(c, 6, len);
  return c;
}
inline std::vector<uint8_t> Cdb16(uint8_t op, uint64_t lba, uint32_t len, uint8_t flags = 0) {
  std::vector<uint8_t> c(16, 0);
  c[0] = op;
  c[1] = flags;
  PutBe64(c, 2, lba);
  PutBe32(c, 10, len);
  return c;
}
inline std::vector<uint8_t> Inquiry(bool evpd, uint8_t page, uint16_t alloc) {
  std::vector<uint8_t> c{0x12, static_cast<uint8_t>(evpd ? 1 : 0), page, 0, 0, 0};
  PutBe16(c, 3, alloc);
  return c;
}

// Sense key / ASC / ASCQ of a CHECK CONDITION result as one value 0xKKAAQQ (0 if none).
inline uint32_t SenseOf(const ScsiResult& r) {
  if (r.status != status::kCheckCondition || r.sense.size() < 14) return 0;
  return uint32_t(r.sense[2] & 0xF) << 16 | uint32_t(r.sense[12]) << 8 | r.sense[13];
}

}  // namespace kelpie::scsi::testing
