#include "proto/inode.h"

#include <algorithm>
#include <cstring>

#include "proto/header.h"

namespace kelpie::proto {

namespace {

void PutString(uint8_t* dst, size_t cap, const std::string& s) {
  std::memcpy(dst, s.data(), std::min(s.size(), cap - 1));
}

// The NUL-terminated string of a fixed field; false if the field holds no NUL (sheepdog's names
// and tags are at most cap - 1 bytes, and the encoder writes them so).
bool GetString(const uint8_t* src, size_t cap, std::string& out) {
  size_t n = 0;
  while (n < cap && src[n] != 0) ++n;
  if (n == cap) return false;
  out.assign(reinterpret_cast<const char*>(src), n);
  return true;
}

void EncodeHeaderInto(const Inode& in, uint8_t* b) {
  using namespace inode_off;
  PutString(b + kName, kMaxVdiLen, in.name);
  PutString(b + kTag, kMaxVdiTagLen, in.tag);
  StoreLE<uint64_t>(b + kCreateTime, in.create_time);
  StoreLE<uint64_t>(b + kSnapCtime, in.snap_ctime);
  StoreLE<uint64_t>(b + kVmClockNsec, in.vm_clock_nsec);
  StoreLE<uint64_t>(b + kVdiSize, in.vdi_size);
  StoreLE<uint64_t>(b + kVmStateSize, in.vm_state_size);
  b[kCopyPolicy] = in.copy_policy;
  b[kStorePolicy] = in.store_policy;
  b[kNrCopies] = in.nr_copies;
  b[kBlockSizeShift] = in.block_size_shift;
  StoreLE<uint32_t>(b + kSnapId, in.snap_id);
  StoreLE<uint32_t>(b + kVdiId, in.vdi_id);
  StoreLE<uint32_t>(b + kParentVdiId, in.parent_vdi_id);
  StoreLE<uint32_t>(b + kBtreeCounter, in.btree_counter);
}

}  // namespace

std::vector<uint8_t> EncodeInodeHeader(const Inode& inode) {
  std::vector<uint8_t> b(kInodeHeaderSize, 0);
  EncodeHeaderInto(inode, b.data());
  return b;
}

std::vector<uint8_t> EncodeInode(const Inode& inode) {
  std::vector<uint8_t> b(kInodeRefreshSize, 0);
  EncodeHeaderInto(inode, b.data());
  const size_t n = std::min<size_t>(inode.data_vdi_id.size(), kMaxDataObjs);
  for (size_t i = 0; i < n; ++i) {
    StoreLE<uint32_t>(b.data() + inode_off::kDataVdiId + 4 * i, inode.data_vdi_id[i]);
  }
  return b;
}

bool DecodeInode(std::span<const uint8_t> bytes, Inode& out) {
  using namespace inode_off;
  if (bytes.size() < kInodeHeaderSize) return false;
  const uint8_t* b = bytes.data();
  if (!GetString(b + kName, kMaxVdiLen, out.name) || !GetString(b + kTag, kMaxVdiTagLen, out.tag))
    return false;
  out.create_time = LoadLE<uint64_t>(b + kCreateTime);
  out.snap_ctime = LoadLE<uint64_t>(b + kSnapCtime);
  out.vm_clock_nsec = LoadLE<uint64_t>(b + kVmClockNsec);
  out.vdi_size = LoadLE<uint64_t>(b + kVdiSize);
  out.vm_state_size = LoadLE<uint64_t>(b + kVmStateSize);
  out.copy_policy = b[kCopyPolicy];
  out.store_policy = b[kStorePolicy];
  out.nr_copies = b[kNrCopies];
  out.block_size_shift = b[kBlockSizeShift];
  // Outside sheepdog's range the object size means nothing (and a shift of 64 or more is not
  // even a number): the inode is corrupt.
  if (out.block_size_shift < kMinBlockSizeShift || out.block_size_shift > kMaxBlockSizeShift)
    return false;
  out.snap_id = LoadLE<uint32_t>(b + kSnapId);
  out.vdi_id = LoadLE<uint32_t>(b + kVdiId);
  out.parent_vdi_id = LoadLE<uint32_t>(b + kParentVdiId);
  out.btree_counter = LoadLE<uint32_t>(b + kBtreeCounter);
  out.data_vdi_id.clear();
  if (bytes.size() >= kInodeRefreshSize) {
    out.data_vdi_id.resize(kMaxDataObjs);
    for (size_t i = 0; i < kMaxDataObjs; ++i) {
      out.data_vdi_id[i] = LoadLE<uint32_t>(b + kDataVdiId + 4 * i);
    }
  }
  return true;
}

}  // namespace kelpie::proto
