// The inode object of a VDI, byte-identical to sheepdog's struct sd_inode: tgtd reads it directly.
// Layout: a 4664-byte header, then data_vdi_id[2^20] (u32 each: which VDI owns index i, 0 = never
// written), then gref[2^20] (generation/count pairs, kept zero here).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proto/constants.h"

namespace kelpie::proto {

namespace inode_off {
inline constexpr size_t kName = 0;
inline constexpr size_t kTag = 256;
inline constexpr size_t kCreateTime = 512;
inline constexpr size_t kSnapCtime = 520;
inline constexpr size_t kVmClockNsec = 528;
inline constexpr size_t kVdiSize = 536;
inline constexpr size_t kVmStateSize = 544;
inline constexpr size_t kCopyPolicy = 552;
inline constexpr size_t kStorePolicy = 553;
inline constexpr size_t kNrCopies = 554;
inline constexpr size_t kBlockSizeShift = 555;
inline constexpr size_t kSnapId = 556;
inline constexpr size_t kVdiId = 560;
inline constexpr size_t kParentVdiId = 564;
inline constexpr size_t kBtreeCounter = 568;
inline constexpr size_t kDataVdiId = 4664;                      // == header size
inline constexpr size_t kGref = kDataVdiId + 4 * kMaxDataObjs;  // 4198968
}  // namespace inode_off

inline constexpr size_t kInodeHeaderSize = inode_off::kDataVdiId;
// Header plus index table: what a client reads to refresh its inode.
inline constexpr size_t kInodeRefreshSize = inode_off::kGref;
inline constexpr size_t kInodeObjectSize = inode_off::kGref + 8 * kMaxDataObjs;  // 12587576

struct Inode {
  std::string name;
  std::string tag;
  uint64_t create_time = 0;
  uint64_t snap_ctime = 0;
  uint64_t vm_clock_nsec = 0;
  uint64_t vdi_size = 0;
  uint64_t vm_state_size = 0;
  uint8_t copy_policy = 0;
  uint8_t store_policy = 0;
  uint8_t nr_copies = 0;
  uint8_t block_size_shift = kDefaultBlockSizeShift;
  uint32_t snap_id = 0;
  uint32_t vdi_id = 0;
  uint32_t parent_vdi_id = 0;
  uint32_t btree_counter = 0;
  // Empty when only the header was decoded; else kMaxDataObjs entries.
  std::vector<uint32_t> data_vdi_id;

  uint64_t object_size() const { return uint64_t(1) << block_size_shift; }
  bool is_snapshot() const { return snap_ctime != 0; }
  // Number of data objects covering vdi_size.
  uint64_t nr_objects() const { return (vdi_size + object_size() - 1) / object_size(); }
};

// Encodes header + index table (kInodeRefreshSize bytes); the gref area is not included.
std::vector<uint8_t> EncodeInode(const Inode& inode);
// Encodes only the 4664-byte header.
std::vector<uint8_t> EncodeInodeHeader(const Inode& inode);
// Decodes from at least kInodeHeaderSize bytes; the table too when the span holds it. Returns
// false when the span is shorter than the header or the block size shift is outside
// [kMinBlockSizeShift, kMaxBlockSizeShift] (a corrupt inode).
bool DecodeInode(std::span<const uint8_t> bytes, Inode& out);

// Maximum VDI size for an object size: object size times 2^20 objects.
constexpr uint64_t MaxVdiSize(uint8_t block_size_shift) {
  return (uint64_t(1) << block_size_shift) * kMaxDataObjs;
}

}  // namespace kelpie::proto
