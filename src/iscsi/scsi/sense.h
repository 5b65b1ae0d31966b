// Fixed-format sense data (SPC-4 §4.5.3; D_SENSE=0 in the Control mode page) and CHECK CONDITION
// results built from it. Every error a handler returns goes through these builders.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "iscsi/scsi/block_backend.h"
#include "iscsi/scsi/scsi_types.h"

namespace kelpie::scsi {

// Sense key + additional sense code + qualifier.
struct SenseCode {
  uint8_t key;
  uint8_t asc;
  uint8_t ascq;
  bool operator==(const SenseCode&) const = default;
};

namespace sense {
inline constexpr uint8_t kNoSense = 0x0, kNotReady = 0x2, kMediumError = 0x3, kHardwareError = 0x4,
                         kIllegalRequest = 0x5, kUnitAttention = 0x6, kDataProtect = 0x7,
                         kAbortedCommand = 0xB, kMiscompare = 0xE;

inline constexpr SenseCode kNoAdditionalSense{kNoSense, 0x00, 0x00};
inline constexpr SenseCode kInvalidOpcode{kIllegalRequest, 0x20, 0x00};
inline constexpr SenseCode kLbaOutOfRange{kIllegalRequest, 0x21, 0x00};
inline constexpr SenseCode kInvalidFieldInCdb{kIllegalRequest, 0x24, 0x00};
inline constexpr SenseCode kLunNotSupported{kIllegalRequest, 0x25, 0x00};
inline constexpr SenseCode kInvalidFieldInParamList{kIllegalRequest, 0x26, 0x00};
inline constexpr SenseCode kInvalidReleaseOfPr{kIllegalRequest, 0x26, 0x04};
inline constexpr SenseCode kParamListLengthError{kIllegalRequest, 0x1A, 0x00};
inline constexpr SenseCode kSavingParamsNotSupported{kIllegalRequest, 0x39, 0x00};
// The data-out the initiator sent (EDTL) cannot hold what the command needs.
inline constexpr SenseCode kInvalidFieldInCommandIu{kIllegalRequest, 0x0E, 0x03};
inline constexpr SenseCode kMiscompareDuringVerify{kMiscompare, 0x1D, 0x00};
inline constexpr SenseCode kUnrecoveredReadError{kMediumError, 0x11, 0x00};
inline constexpr SenseCode kWriteError{kMediumError, 0x0C, 0x00};
inline constexpr SenseCode kInternalTargetFailure{kHardwareError, 0x44, 0x00};
// SBC-3 §4.7.3.6: a thin-provisioned write that cannot get space ends with DATA PROTECT,
// SPACE ALLOCATION FAILED WRITE PROTECT (27/07).
inline constexpr SenseCode kSpaceAllocationFailed{kDataProtect, 0x27, 0x07};
}  // namespace sense

// Unit attention conditions (ASC/ASCQ under sense key UNIT ATTENTION).
namespace ua {
inline constexpr SenseCode kPowerOnOrReset{sense::kUnitAttention, 0x29, 0x00};
inline constexpr SenseCode kLogicalUnitReset{sense::kUnitAttention, 0x29, 0x03};
inline constexpr SenseCode kModeParametersChanged{sense::kUnitAttention, 0x2A, 0x01};
inline constexpr SenseCode kReservationsPreempted{sense::kUnitAttention, 0x2A, 0x03};
inline constexpr SenseCode kReservationsReleased{sense::kUnitAttention, 0x2A, 0x04};
inline constexpr SenseCode kRegistrationsPreempted{sense::kUnitAttention, 0x2A, 0x05};
inline constexpr SenseCode kCapacityChanged{sense::kUnitAttention, 0x2A, 0x09};
}  // namespace ua

// Where in the CDB or parameter list an invalid field is (sense-key specific field pointer).
struct FieldPointer {
  bool in_cdb = true;  // C/D: the field is in the CDB (else in the parameter list)
  uint16_t byte = 0;
  std::optional<uint8_t> bit;  // bit within the byte (BPV=1) when known
};

// 18 bytes of fixed-format sense. `information` sets VALID and the INFORMATION field (it must fit
// in 32 bits, else it is left out).
std::vector<uint8_t> BuildFixedSense(SenseCode code, std::optional<uint64_t> information = {},
                                     std::optional<FieldPointer> field = {});

// CHECK CONDITION with fixed sense.
ScsiResult CheckCondition(SenseCode code, std::optional<uint64_t> information = {},
                          std::optional<FieldPointer> field = {});
// ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer at byte/bit.
ScsiResult InvalidCdbField(uint16_t byte, std::optional<uint8_t> bit = {});
// ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST with the field pointer at byte/bit.
ScsiResult InvalidParamField(uint16_t byte, std::optional<uint8_t> bit = {});
ScsiResult ReservationConflict();
ScsiResult Good();
// GOOD with parameter data cut to the allocation length.
ScsiResult DataIn(std::vector<uint8_t> data, size_t allocation_length);

enum class IoKind { kRead, kWrite };
// CHECK CONDITION for a failed backend call: MEDIUM ERROR unrecovered read / write error,
// DATA PROTECT space allocation failed for kNoSpace, HARDWARE ERROR otherwise.
ScsiResult BackendFailure(IoStatus st, IoKind kind);

}  // namespace kelpie::scsi
