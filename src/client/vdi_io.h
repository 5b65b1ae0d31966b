// VdiIo: block I/O on one VDI through a sheep, the way tgtd's sheepdog backing store does it.
// It keeps the VDI's inode (header and index table) and maps byte ranges to data objects:
//  - an index never written reads as zeros;
//  - a write to an index the VDI does not own creates the object (CREATE_AND_WRITE_OBJ), with
//    copy-on-write from the owning ancestor when there is one, then records the new owner in the
//    inode's index table (WRITE_OBJ of the changed entries);
//  - READONLY (a snapshot was taken of this VDI) makes it re-resolve the name and retry;
//    INODE_INVALIDATED (another client changed the inode) makes it reload the inode and retry.
// Opened kShared, it is a multipath participant, as tgtd is: it takes a shared lock (LOCK_VDI
// type 1, which also resolves the name), flags its I/O TGT so the sheep can tell it its inode is
// stale, asks before trusting an unallocated index (a 1-byte TGT read of its inode), follows a
// snapshot to the new working VDI on reload, and releases the lock on Close.
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
  enum class Mode { kUnlocked, kShared };
  VdiIo(SyncClient& conn, std::string name, std::string tag = "", uint32_t snapid = 0,
        Mode mode = Mode::kUnlocked);
  uint32_t Open();
  // Releases a shared lock (no-op when unlocked).
  uint32_t Close();

  // Each returns a proto::res code.
  uint32_t Read(uint64_t offset, std::span<uint8_t> out);
  uint32_t Write(uint64_t offset, std::span<const uint8_t> data);
  // Reloads the inode (after another client changed it).
  uint32_t Reload();

  const proto::Inode& inode() const { return inode_; }
  uint32_t vid() const { return inode_.vdi_id; }

 private:
  uint32_t Resolve(uint32_t* vid);
  // Is this participant's inode still current? (Shared mode: asks the sheep.)
  uint32_t CheckFresh();
  uint16_t io_flags() const;
  uint32_t WriteObject(uint32_t idx, uint64_t obj_off, std::span<const uint8_t> data);

  SyncClient& conn_;
  std::string name_, tag_;
  uint32_t snapid_;
  Mode mode_;
  proto::Inode inode_;
};

}  // namespace kelpie::client
