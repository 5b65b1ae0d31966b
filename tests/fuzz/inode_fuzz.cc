// Fuzz target: the inode decoder (proto/inode), fed what a peer or a disk hands back. A decoded
// inode must encode and decode again to the same fields.
#include <cstdlib>

#include "proto/inode.h"

using namespace kelpie::proto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Short inputs are stretched with zeros so that whole headers are decoded; the first byte says
  // how far: odd values to the header size, 0xff to the refresh size (header and index table,
  // 4 MiB: kept rare, it is slow and the table holds no lengths).
  std::vector<uint8_t> bytes(data, data + size);
  if (!bytes.empty()) {
    const uint8_t shape = bytes[0];
    if (shape & 1) bytes.resize(std::max(bytes.size(), kInodeHeaderSize));
    if (shape == 0xff) bytes.resize(std::max(bytes.size(), size_t(kInodeRefreshSize)));
  }
  Inode inode;
  if (!DecodeInode(bytes, inode)) return 0;
  (void)inode.nr_objects();
  (void)inode.is_snapshot();
  Inode again;
  const std::vector<uint8_t> encoded =
      inode.data_vdi_id.empty() ? EncodeInodeHeader(inode) : EncodeInode(inode);
  if (!DecodeInode(encoded, again)) std::abort();
  if (again.name != inode.name || again.tag != inode.tag || again.vdi_size != inode.vdi_size ||
      again.vdi_id != inode.vdi_id || again.block_size_shift != inode.block_size_shift ||
      again.data_vdi_id != inode.data_vdi_id)
    std::abort();
  return 0;
}
