// Helpers shared by the SBC-3 handlers: decoding the LBA / transfer length of the 6/10/12/16-byte
// CDB layouts and overflow-free range checks.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

#include "iscsi/scsi/block_backend.h"
#include "iscsi/scsi/scsi_types.h"

namespace kelpie::scsi {

// LBA and transfer length of a CDB laid out like READ/WRITE(6/10/12/16) (also VERIFY, WRITE AND
// VERIFY, WRITE SAME, PRE-FETCH and SYNCHRONIZE CACHE), chosen by the opcode's group.
struct BlockIo {
  uint64_t lba = 0;
  uint32_t blocks = 0;
  uint16_t length_field = 0;  // byte offset of TRANSFER LENGTH (for sense field pointers)
  bool fua = false;           // FORCE UNIT ACCESS (10/12/16-byte CDBs)
};
BlockIo DecodeBlockIo(std::span<const uint8_t> cdb);

// Whether [lba, lba+blocks) lies within a capacity of `capacity_blocks`, without overflow:
// 0 blocks at lba == capacity is in range; anything at lba > capacity is not.
inline bool InRange(uint64_t lba, uint64_t blocks, uint64_t capacity_blocks) {
  return lba <= capacity_blocks && blocks <= capacity_blocks - lba;
}

inline uint32_t ClampToU32(uint64_t v) {
  return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
}

// Offset of the first byte where a and b (same length) differ.
std::optional<uint64_t> FirstDifference(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace kelpie::scsi
