// Fuzz target: SCSI CDBs through the command table (src/iscsi/scsi) of one logical unit over the
// in-memory backend, as the transport hands them over: CDB (6..32 bytes), expected transfer
// length, R/W bits, the write data, and one of two nexuses (so reservations and unit attentions
// between initiators are reached). A result must be well formed: sense exactly with CHECK
// CONDITION.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <future>

#include "iscsi/scsi/logical_unit.h"
#include "iscsi/scsi/mem_backend.h"

using namespace kelpie::scsi;

namespace {

constexpr uint64_t kLuBytes = 8ull << 20;  // small: WRITE SAME / UNMAP over all of it stay cheap

LogicalUnit& Lu() {
  static auto* lu = [] {
    LuConfig cfg;
    cfg.target_name = "iqn.2026-11.io.kelpie:fuzz";
    cfg.workers = 2;
    auto* unit = new LogicalUnit(MakeMemBackend(MakeMemStore("fuzz", kLuBytes)), cfg);
    for (const char* who : {"iqn.fuzz:a", "iqn.fuzz:b"})
      unit->NexusLogin(Nexus{who, "800000000001", 1});
    return unit;
  }();
  return *lu;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ScsiCommand cmd;
  const uint8_t setup = in.ConsumeIntegral<uint8_t>();
  cmd.nexus = Nexus{(setup & 1) ? "iqn.fuzz:b" : "iqn.fuzz:a", "800000000001", 1};
  cmd.read = setup & 2;
  cmd.write = setup & 4;
  cmd.edtl = in.ConsumeIntegralInRange<uint32_t>(0, 1u << 20);
  cmd.cdb = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(6, 32));
  cmd.cdb.resize(std::max<size_t>(cmd.cdb.size(), 6));
  if (cmd.write) {
    // As the transport gathers it: all EDTL bytes (zero-filled here), or fewer when the
    // initiator sent less.
    cmd.data_out = in.ConsumeRemainingBytes<uint8_t>();
    cmd.data_out.resize((setup & 8) ? cmd.edtl : std::min<size_t>(cmd.edtl, cmd.data_out.size()));
  }
  std::promise<ScsiResult> done;
  auto result = done.get_future();
  Lu().Execute(std::move(cmd), [&done](ScsiResult r) { done.set_value(std::move(r)); });
  const ScsiResult r = result.get();
  if (!r.sense.empty() && r.status != status::kCheckCondition) std::abort();
  if (r.status == status::kCheckCondition && r.sense.empty()) std::abort();
  return 0;
}
