#include <algorithm>

#include "iscsi/scsi/handlers.h"

namespace kelpie::scsi {
namespace {

using U = std::array<uint8_t, 16>;
constexpr PrAccess kAllowed = PrAccess::kAllowed, kRead = PrAccess::kRead,
                   kWrite = PrAccess::kWrite;
constexpr uint32_t kIoTimeout = 30, kAdminTimeout = 10;

// Byte 1 of READ/WRITE 10/12/16 and COMPARE AND WRITE: RD/WRPROTECT 0xE0, DPO 0x10, FUA 0x08,
// FUA_NV 0x02 (DPO and FUA are accepted because MODE SENSE reports DPOFUA=1).
constexpr uint8_t kRwFlags = 0xFA;
// VERIFY / WRITE AND VERIFY byte 1: VRPROTECT/WRPROTECT 0xE0, DPO 0x10, BYTCHK 0x02.
constexpr uint8_t kVerifyFlags = 0xF2;
constexpr uint8_t kGroup = 0x1F;
// SYNCHRONIZE CACHE byte 1: SYNC_NV 0x04 (accepted, nothing is volatile), IMMED 0x02.
constexpr uint8_t kSyncFlags = 0x06;

// clang-format off
constexpr CommandInfo kCommands[] = {
  // opcode, SA, name, CDB length, usage, handler, PR access, ok under SPC-2 RESERVE, reports UA, handler reads shared state, timeout
  {0x00, {}, "TEST UNIT READY", 6, U{0x00, 0, 0, 0, 0, 0}, HandleTestUnitReady, kAllowed, false, true, false, kAdminTimeout},
  {0x03, {}, "REQUEST SENSE", 6, U{0x03, 0, 0, 0, 0xFF, 0}, HandleRequestSense, kAllowed, true, false, true, kAdminTimeout},
  {0x08, {}, "READ(6)", 6, U{0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0}, HandleRead, kRead, false, true, false, kIoTimeout},
  {0x0A, {}, "WRITE(6)", 6, U{0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0}, HandleWrite, kWrite, false, true, false, kIoTimeout},
  {0x12, {}, "INQUIRY", 6, U{0x12, 0x01, 0xFF, 0xFF, 0xFF, 0}, HandleInquiry, kAllowed, true, false, false, kAdminTimeout},
  {0x15, {}, "MODE SELECT(6)", 6, U{0x15, 0x11, 0, 0, 0xFF, 0}, HandleModeSelect, kWrite, false, true, false, kAdminTimeout},
  {0x16, {}, "RESERVE(6)", 6, U{0x16, 0, 0, 0, 0, 0}, HandleReserve, kAllowed, false, true, true, kAdminTimeout},
  {0x17, {}, "RELEASE(6)", 6, U{0x17, 0, 0, 0, 0, 0}, HandleRelease, kAllowed, true, true, true, kAdminTimeout},
  {0x1A, {}, "MODE SENSE(6)", 6, U{0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0}, HandleModeSense, kRead, false, true, false, kAdminTimeout},
  {0x25, {}, "READ CAPACITY(10)", 10, U{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, HandleReadCapacity10, kAllowed, true, true, false, kAdminTimeout},
  {0x28, {}, "READ(10)", 10, U{0x28, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleRead, kRead, false, true, false, kIoTimeout},
  {0x2A, {}, "WRITE(10)", 10, U{0x2A, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleWrite, kWrite, false, true, false, kIoTimeout},
  {0x2E, {}, "WRITE AND VERIFY(10)", 10, U{0x2E, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleWriteAndVerify, kWrite, false, true, false, kIoTimeout},
  {0x2F, {}, "VERIFY(10)", 10, U{0x2F, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleVerify, kRead, false, true, false, kIoTimeout},
  {0x34, {}, "PRE-FETCH(10)", 10, U{0x34, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandlePreFetch, kRead, false, true, false, kIoTimeout},
  {0x35, {}, "SYNCHRONIZE CACHE(10)", 10, U{0x35, kSyncFlags, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleSynchronizeCache, kWrite, false, true, false, kIoTimeout},
  {0x41, {}, "WRITE SAME(10)", 10, U{0x41, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0xFF, 0xFF, 0}, HandleWriteSame, kWrite, false, true, false, kIoTimeout},
  {0x42, {}, "UNMAP", 10, U{0x42, 0x01, 0, 0, 0, 0, kGroup, 0xFF, 0xFF, 0}, HandleUnmap, kWrite, false, true, false, kIoTimeout},
  {0x55, {}, "MODE SELECT(10)", 10, U{0x55, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, HandleModeSelect, kWrite, false, true, false, kAdminTimeout},
  {0x56, {}, "RESERVE(10)", 10, U{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}, HandleReserve, kAllowed, false, true, true, kAdminTimeout},
  {0x57, {}, "RELEASE(10)", 10, U{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}, HandleRelease, kAllowed, true, true, true, kAdminTimeout},
  {0x5A, {}, "MODE SENSE(10)", 10, U{0x5A, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0}, HandleModeSense, kRead, false, true, false, kAdminTimeout},
  {0x5E, 0x00, "PERSISTENT RESERVE IN/READ KEYS", 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, HandlePersistentReserveIn, kAllowed, false, true, true, kAdminTimeout},
  {0x5E, 0x01, "PERSISTENT RESERVE IN/READ RESERVATION", 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, HandlePersistentReserveIn, kAllowed, false, true, true, kAdminTimeout},
  {0x5E, 0x02, "PERSISTENT RESERVE IN/REPORT CAPABILITIES", 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, HandlePersistentReserveIn, kAllowed, false, true, true, kAdminTimeout},
  {0x5E, 0x03, "PERSISTENT RESERVE IN/READ FULL STATUS", 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, HandlePersistentReserveIn, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x00, "PERSISTENT RESERVE OUT/REGISTER", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x01, "PERSISTENT RESERVE OUT/RESERVE", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x02, "PERSISTENT RESERVE OUT/RELEASE", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x03, "PERSISTENT RESERVE OUT/CLEAR", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x04, "PERSISTENT RESERVE OUT/PREEMPT", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x05, "PERSISTENT RESERVE OUT/PREEMPT AND ABORT", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x5F, 0x06, "PERSISTENT RESERVE OUT/REGISTER AND IGNORE EXISTING KEY", 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, HandlePersistentReserveOut, kAllowed, false, true, true, kAdminTimeout},
  {0x88, {}, "READ(16)", 16, U{0x88, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleRead, kRead, false, true, false, kIoTimeout},
  {0x89, {}, "COMPARE AND WRITE", 16, U{0x89, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, kGroup, 0}, HandleCompareAndWrite, kWrite, false, true, false, kIoTimeout},
  {0x8A, {}, "WRITE(16)", 16, U{0x8A, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleWrite, kWrite, false, true, false, kIoTimeout},
  {0x8E, {}, "WRITE AND VERIFY(16)", 16, U{0x8E, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleWriteAndVerify, kWrite, false, true, false, kIoTimeout},
  {0x8F, {}, "VERIFY(16)", 16, U{0x8F, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleVerify, kRead, false, true, false, kIoTimeout},
  {0x90, {}, "PRE-FETCH(16)", 16, U{0x90, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandlePreFetch, kRead, false, true, false, kIoTimeout},
  {0x91, {}, "SYNCHRONIZE CACHE(16)", 16, U{0x91, kSyncFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleSynchronizeCache, kWrite, false, true, false, kIoTimeout},
  {0x93, {}, "WRITE SAME(16)", 16, U{0x93, 0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleWriteSame, kWrite, false, true, false, kIoTimeout},
  {0x9E, 0x10, "READ CAPACITY(16)", 16, U{0x9E, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, HandleReadCapacity16, kAllowed, true, true, false, kAdminTimeout},
  {0x9E, 0x12, "GET LBA STATUS", 16, U{0x9E, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, HandleGetLbaStatus, kRead, false, true, false, kAdminTimeout},
  {0xA0, {}, "REPORT LUNS", 12, U{0xA0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, HandleReportLuns, kAllowed, true, false, false, kAdminTimeout},
  {0xA3, 0x0A, "REPORT TARGET PORT GROUPS", 12, U{0xA3, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, HandleReportTargetPortGroups, kAllowed, true, true, true, kAdminTimeout},
  {0xA3, 0x0C, "REPORT SUPPORTED OPERATION CODES", 12, U{0xA3, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, HandleReportSupportedOpcodes, kAllowed, true, true, false, kAdminTimeout},
  {0xA8, {}, "READ(12)", 12, U{0xA8, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleRead, kRead, false, true, false, kIoTimeout},
  {0xAA, {}, "WRITE(12)", 12, U{0xAA, kRwFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleWrite, kWrite, false, true, false, kIoTimeout},
  {0xAE, {}, "WRITE AND VERIFY(12)", 12, U{0xAE, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleWriteAndVerify, kWrite, false, true, false, kIoTimeout},
  {0xAF, {}, "VERIFY(12)", 12, U{0xAF, kVerifyFlags, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, kGroup, 0}, HandleVerify, kRead, false, true, false, kIoTimeout},
};
// clang-format on

}  // namespace

std::span<const CommandInfo> AllCommands() { return kCommands; }

bool HasServiceActions(uint8_t opcode) {
  return opcode == 0x5E || opcode == 0x5F || opcode == 0x9E || opcode == 0xA3;
}

const CommandInfo* FindCommand(uint8_t opcode, uint8_t service_action) {
  bool by_sa = HasServiceActions(opcode);
  auto it = std::find_if(std::begin(kCommands), std::end(kCommands), [&](const CommandInfo& c) {
    return c.opcode == opcode && (!by_sa || c.service_action == service_action);
  });
  return it == std::end(kCommands) ? nullptr : &*it;
}

}  // namespace kelpie::scsi
