// The contract between the iSCSI transport (src/iscsi/transport) and the SCSI command sets
// (src/iscsi/scsi): one command in, one result out. The transport gathers all data-out before
// execution and sends data-in, status, sense and residuals; the SCSI layer never sees PDUs.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kelpie::scsi {

// An I_T nexus: one initiator port (iSCSI name + ISID) through one target port of one process.
// Registrations, reservations and unit attentions are kept per nexus, in state shared by every
// target process of the LU, so Id() must be unique across processes (it includes the target
// port's relative port id, which differs per process).
struct Nexus {
  std::string initiator;  // iSCSI initiator name
  std::string isid;       // 12 lowercase hex digits
  uint16_t rel_port = 1;  // relative target port id of this process (1..65535)
  std::string Id() const { return initiator + ",i,0x" + isid + ",p" + std::to_string(rel_port); }
};

namespace status {
inline constexpr uint8_t kGood = 0x00;
inline constexpr uint8_t kCheckCondition = 0x02;
inline constexpr uint8_t kBusy = 0x08;
inline constexpr uint8_t kReservationConflict = 0x18;
inline constexpr uint8_t kTaskSetFull = 0x28;
inline constexpr uint8_t kTaskAborted = 0x40;
}  // namespace status

struct ScsiCommand {
  uint64_t lun = 0;                  // LUN number (0 for the only LU of a target)
  std::vector<uint8_t> cdb;          // 6..260 bytes (longer CDBs come from an AHS)
  uint32_t edtl = 0;                 // expected data transfer length from the initiator
  bool read = false, write = false;  // the R and W bits
  std::vector<uint8_t> data_out;     // min(edtl, what the initiator sent) bytes of write data
  Nexus nexus;
};

struct ScsiResult {
  uint8_t status = status::kGood;
  std::vector<uint8_t> data_in;  // for reads: what the command produced (already cut to the
                                 // allocation length); the transport sends min(size, edtl)
  std::vector<uint8_t> sense;    // fixed-format sense data when status is CHECK CONDITION
  // The transfer length the command itself asked for (data-in size for reads, CDB length × block
  // size for writes). The transport sets the O/U residual from it and the EDTL.
  std::optional<uint32_t> scsi_length;
};

// Called exactly once, from any thread (also synchronously from inside Execute).
using ScsiDone = std::function<void(ScsiResult)>;

// Task management functions that reach the LU (ABORT TASK / ABORT TASK SET are transport-only:
// the transport drops the aborted tasks' responses).
enum class LuReset { kLogicalUnitReset, kTargetWarmReset, kTargetColdReset };

}  // namespace kelpie::scsi
