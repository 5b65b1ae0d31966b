// The command table: one entry per supported (opcode, service action) with its handler and the
// metadata that drives dispatch (CDB length, reserved-bit checking through the CDB usage bitmap,
// unit attention and reservation rules) and REPORT SUPPORTED OPERATION CODES.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iscsi/scsi/block_backend.h"
#include "iscsi/scsi/logical_unit.h"
#include "iscsi/scsi/lu_state.h"
#include "iscsi/scsi/scsi_types.h"

namespace kelpie::scsi {

// The data I/O of one command. Each call carries the fence of the shared state the command
// decided on (read from the snapshot at the call: a handler's own state change moves it) and
// notes the backend's verdict: refused as stale (the LU reruns the command on fresh state) or
// answered, which means admitted: the state the command used was current when its I/O happened
// (an error answer included: the fence is checked before anything else).
class CommandIo {
 public:
  CommandIo(BlockBackend& backend, const SharedSnapshot& shared)
      : backend_(backend), shared_(shared) {}
  IoStatus Read(uint64_t offset, std::span<uint8_t> out) {
    return Note(backend_.Read(offset, out, shared_.fence));
  }
  IoStatus Write(uint64_t offset, std::span<const uint8_t> data, bool write_back = false) {
    return Note(backend_.Write(offset, data, shared_.fence, write_back));
  }
  IoStatus Discard(uint64_t offset, uint64_t len) {
    return Note(backend_.Discard(offset, len, shared_.fence));
  }
  IoStatus Flush() { return Note(backend_.Flush(shared_.fence)); }
  IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                           std::span<const uint8_t> data, uint64_t* miscompare_at) {
    return Note(backend_.CompareAndWrite(offset, compare, data, miscompare_at, shared_.fence));
  }
  IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run) {
    return Note(backend_.MapStatus(offset, len, mapped, run, shared_.fence));
  }
  bool stale() const { return stale_; }
  bool admitted() const { return admitted_; }

 private:
  IoStatus Note(IoStatus st) {
    (st == IoStatus::kStale ? stale_ : admitted_) = true;
    return st;
  }
  BlockBackend& backend_;
  const SharedSnapshot& shared_;
  bool stale_ = false, admitted_ = false;
};

// One command as a handler sees it.
struct Request {
  const ScsiCommand& cmd;
  std::span<const uint8_t> cdb;  // the command's CDB, zero-padded to its table CDB length
  BlockBackend& backend;         // shared state and identity (data I/O goes through `io`)
  CommandIo& io;
  const LuConfig& cfg;
  // The shared LU state, loaded once for this command when the command uses it (see
  // CommandInfo::uses_shared_state); handlers that change it go through UpdateSharedState.
  SharedSnapshot& shared;
  uint64_t capacity_bytes;  // backend Size() when the command started
  std::string nexus_id;     // cmd.nexus.Id()
  // Set by handlers once they decoded the transfer length the CDB asks for (bytes); copied into
  // ScsiResult::scsi_length when the handler did not set that itself.
  std::optional<uint32_t> scsi_length;

  uint64_t Blocks() const { return capacity_bytes / cfg.block_size; }
};

using Handler = ScsiResult (*)(Request&);

// How a command fares under a persistent reservation held by another I_T nexus (SPC-4 §5.9.1,
// Table 52 simplified to the classes the tests and initiators use).
enum class PrAccess : uint8_t {
  kAllowed,  // never conflicts (INQUIRY, TUR, READ CAPACITY, PR IN/OUT ...)
  kRead,     // conflicts only for Exclusive Access types
  kWrite,    // conflicts for every type (registrants exempt under RO/AR types)
};

struct CommandInfo {
  uint8_t opcode;
  std::optional<uint8_t> service_action;
  std::string_view name;
  uint8_t cdb_length;
  // CDB usage bitmap (SPC-4 §6.35.3): bits the device server evaluates. Bits outside it are
  // reserved: a command with any of them set ends with INVALID FIELD IN CDB.
  std::array<uint8_t, 16> usage;
  Handler handler;
  PrAccess pr_access;
  bool allowed_under_spc2_reserve;  // allowed while another nexus holds RESERVE(6)
  bool reports_unit_attention;      // false: INQUIRY, REPORT LUNS, REQUEST SENSE
  bool handler_uses_shared_state;   // the handler reads shared state (PR IN, RTPG ...)
  uint32_t recommended_timeout_s;   // REPORT SUPPORTED OPERATION CODES timeouts descriptor

  bool UsesSharedState() const { return reports_unit_attention || handler_uses_shared_state; }
};

std::span<const CommandInfo> AllCommands();
// Opcodes whose CDB byte 1 bits 4:0 hold a service action that selects the command.
bool HasServiceActions(uint8_t opcode);
// The command for a CDB's opcode (+ service action), or nullptr.
const CommandInfo* FindCommand(uint8_t opcode, uint8_t service_action);

}  // namespace kelpie::scsi
