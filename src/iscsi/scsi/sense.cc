#include "iscsi/scsi/sense.h"

#include <limits>

#include "iscsi/scsi/bytes.h"

namespace kelpie::scsi {

std::vector<uint8_t> BuildFixedSense(SenseCode code, std::optional<uint64_t> information,
                                     std::optional<FieldPointer> field) {
  std::vector<uint8_t> s(18, 0);
  s[0] = 0x70;  // current error, fixed format
  s[2] = code.key & 0x0F;
  if (information && *information <= std::numeric_limits<uint32_t>::max()) {
    s[0] |= 0x80;  // VALID
    PutBe32(s, 3, *information);
  }
  s[7] = 10;  // additional sense length: bytes 8..17
  s[12] = code.asc;
  s[13] = code.ascq;
  if (field) {
    s[15] = 0x80;  // SKSV
    if (field->in_cdb) s[15] |= 0x40;
    if (field->bit) s[15] |= 0x08 | (*field->bit & 0x07);
    PutBe16(s, 16, field->byte);
  }
  return s;
}

ScsiResult CheckCondition(SenseCode code, std::optional<uint64_t> information,
                          std::optional<FieldPointer> field) {
  ScsiResult r;
  r.status = status::kCheckCondition;
  r.sense = BuildFixedSense(code, information, field);
  return r;
}

ScsiResult InvalidCdbField(uint16_t byte, std::optional<uint8_t> bit) {
  return CheckCondition(sense::kInvalidFieldInCdb, {}, FieldPointer{true, byte, bit});
}

ScsiResult InvalidParamField(uint16_t byte, std::optional<uint8_t> bit) {
  return CheckCondition(sense::kInvalidFieldInParamList, {}, FieldPointer{false, byte, bit});
}

ScsiResult ReservationConflict() {
  ScsiResult r;
  r.status = status::kReservationConflict;
  return r;
}

ScsiResult Good() { return ScsiResult{}; }

ScsiResult DataIn(std::vector<uint8_t> data, size_t allocation_length) {
  if (data.size() > allocation_length) data.resize(allocation_length);
  ScsiResult r;
  r.data_in = std::move(data);
  return r;
}

ScsiResult BackendFailure(IoStatus st, IoKind kind) {
  switch (st) {
    case IoStatus::kNoSpace:
      return CheckCondition(sense::kSpaceAllocationFailed);
    case IoStatus::kError:
      return CheckCondition(kind == IoKind::kRead ? sense::kUnrecoveredReadError
                                                  : sense::kWriteError);
    default:
      return CheckCondition(sense::kInternalTargetFailure);
  }
}

}  // namespace kelpie::scsi
