// Command handlers referenced by the command table. Each runs on an LU worker thread and may
// block on the backend. Opcode variants (6/10/12/16-byte CDBs) share one handler that decodes
// the CDB by its opcode.
#pragma once
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

// sbc_provisioning.cc: capacity, thin provisioning, cache.
ScsiResult HandleReadCapacity10(Request& req);
ScsiResult HandleReadCapacity16(Request& req);
ScsiResult HandleWriteSame(Request& req);
ScsiResult HandleUnmap(Request& req);
ScsiResult HandleGetLbaStatus(Request& req);
ScsiResult HandleSynchronizeCache(Request& req);
ScsiResult HandlePreFetch(Request& req);

}  // namespace kelpie::scsi
