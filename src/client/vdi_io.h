// VdiIo: block I/O on one VDI through a sheep, the way tgtd's sheepdog backing store does it.
// It keeps the VDI's inode (header and index table) and maps byte ranges to data objects:
//  - an index never written reads as zeros;
//  - a write to an index the VDI does not own creates the object (CREATE_AND_WRITE_OBJ), with
//    copy-on-write from the owning ancestor when there is one, then records the new owner in the
//    inode's index table (WRITE_OBJ of the changed entries);
//  - READONLY (a snapshot was taken of this VDI) makes it re-resolve the name and retry;
//    INODE_INVALIDATED (another client changed the inode) makes it reload the inode and retry.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "client/sync_client.h"
#include "proto/inode.h"

namespace kelpie::client {

class VdiIo {
 public:
  // Resolves name (or the snapshot tag / snapid) and loads its inode. Result code in *rc.
  VdiIo(SyncClient& conn, std::string name, std::string tag = "", uint32_t snapid = 0);
  uint32_t Open();

  // Each returns a proto::res code.
  uint32_t Read(uint64_t offset, std::span<uint8_t> out);
  uint32_t Write(uint64_t offset, std::span<const uint8_t> data);
  // Reloads the inode (after another client changed it).
  uint32_t Reload();

  const proto::Inode& inode() const { return inode_; }
  uint32_t vid() const { return inode_.vdi_id; }

 private:
  uint32_t Resolve(uint32_t* vid);
  uint32_t WriteObject(uint32_t idx, uint64_t obj_off, std::span<const uint8_t> data);

  SyncClient& conn_;
  std::string name_, tag_;
  uint32_t snapid_;
  proto::Inode inode_;
};

}  // namespace kelpie::client
