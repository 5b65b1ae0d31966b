// The limits published in the Block Limits VPD page (0xB0) and enforced by the SBC handlers.
// Sized around Kelpie's 4 MiB objects.
#pragma once
#include <cstdint>

namespace kelpie::scsi {

struct BlockLimits {
  static constexpr uint64_t kObjectBytes = 4ull << 20;
  static constexpr uint32_t kMaxCompareAndWriteBlocks = 255;  // NLB is one byte
  static constexpr uint32_t kMaxUnmapDescriptors = 256;

  uint32_t block_size;

  // READ/WRITE/VERIFY transfer limit: one object.
  uint32_t MaxTransferBlocks() const { return static_cast<uint32_t>(kObjectBytes / block_size); }
  uint32_t OptimalTransferBlocks() const { return MaxTransferBlocks(); }
  // Per UNMAP command: 64 objects (256 MiB), under the 1M-block cap libiscsi checks.
  uint32_t MaxUnmapBlocks() const { return static_cast<uint32_t>(64 * kObjectBytes / block_size); }
  uint32_t OptimalUnmapGranularity() const { return MaxTransferBlocks(); }
  // WRITE SAME: one object (must stay in [256, 65535] blocks, see iscsi.md WriteSame16.Unmap).
  uint32_t MaxWriteSameBlocks() const { return MaxTransferBlocks(); }
};

}  // namespace kelpie::scsi
