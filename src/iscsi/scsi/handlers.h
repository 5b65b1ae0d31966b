// Command handlers referenced by the command table. Each runs on an LU worker thread and may
// block on the backend. Opcode variants (6/10/12/16-byte CDBs) share one handler that decodes
// the CDB by its opcode.
#pragma once
#include <variant>

#include "iscsi/scsi/command_table.h"

namespace kelpie::scsi {

// spc.cc: device identification and discovery.
ScsiResult HandleInquiry(Request& req);
ScsiResult HandleReportLuns(Request& req);
ScsiResult HandleTestUnitReady(Request& req);
ScsiResult HandleRequestSense(Request& req);
ScsiResult HandleReportSupportedOpcodes(Request& req);
ScsiResult HandleReportTargetPortGroups(Request& req);

// spc_mode.cc: MODE SENSE(6/10), MODE SELECT(6/10).
ScsiResult HandleModeSense(Request& req);
ScsiResult HandleModeSelect(Request& req);

// spc_reservations.cc: PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE(6/10).
ScsiResult HandlePersistentReserveIn(Request& req);
ScsiResult HandlePersistentReserveOut(Request& req);
ScsiResult HandleReserve(Request& req);
ScsiResult HandleRelease(Request& req);
// Whether `info` from `nexus` conflicts with the reservations in `state` (status 0x18).
bool ReservationConflicts(const SharedState& state, const std::string& nexus,
                          const CommandInfo& info);

// sbc.cc: data transfer.
ScsiResult HandleRead(Request& req);
ScsiResult HandleWrite(Request& req);
ScsiResult HandleVerify(Request& req);
ScsiResult HandleWriteAndVerify(Request& req);
ScsiResult HandleCompareAndWrite(Request& req);
// A READ or WRITE (6/10/12/16) decoded and checked: the bytes it moves.
struct DataTransfer {
  uint64_t offset = 0;      // on the medium, in bytes
  uint64_t bytes = 0;       // read: min(EDTL, CDB length); write: whole blocks of the data-out
  bool write_back = false;  // a write that may stay in the volatile cache (WCE=1, no FUA)
};
// The part of HandleRead / HandleWrite before the I/O (the LU's non-blocking path starts the
// I/O itself): a result when the command ends without I/O (a check failed, nothing to move).
// Sets req.scsi_length.
std::variant<ScsiResult, DataTransfer> PlanTransfer(Request& req, bool write);

// sbc_provisioning.cc: capacity, thin provisioning, cache.
ScsiResult HandleReadCapacity10(Request& req);
ScsiResult HandleReadCapacity16(Request& req);
ScsiResult HandleWriteSame(Request& req);
ScsiResult HandleUnmap(Request& req);
ScsiResult HandleGetLbaStatus(Request& req);
ScsiResult HandleSynchronizeCache(Request& req);
ScsiResult HandlePreFetch(Request& req);

}  // namespace kelpie::scsi
