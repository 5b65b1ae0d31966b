#include "iscsi/scsi/sbc_common.h"

#include <algorithm>

#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {

BlockIo DecodeBlockIo(std::span<const uint8_t> cdb) {
  BlockIo io;
  switch (cdb[0] >> 5) {
    case 0:  // 6-byte: 21-bit LBA, 8-bit length where 0 means 256
      io.lba = GetBe(cdb, 1, 3) & 0x1FFFFF;
      io.blocks = cdb[4] == 0 ? 256 : cdb[4];
      io.length_field = 4;
      break;
    case 1:
    case 2:  // 10-byte
      io.lba = GetBe32(cdb, 2);
      io.blocks = GetBe16(cdb, 7);
      io.length_field = 7;
      break;
    case 5:  // 12-byte
      io.lba = GetBe32(cdb, 2);
      io.blocks = GetBe32(cdb, 6);
      io.length_field = 6;
      break;
    default:  // 16-byte
      io.lba = GetBe64(cdb, 2);
      io.blocks = GetBe32(cdb, 10);
      io.length_field = 10;
      break;
  }
  if (cdb[0] >> 5 != 0) io.fua = (cdb[1] & 0x08) != 0;
  return io;
}

std::optional<uint64_t> FirstDifference(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (ia == a.end() && ib == b.end()) return std::nullopt;
  return static_cast<uint64_t>(ia - a.begin());
}

}  // namespace kelpie::scsi
