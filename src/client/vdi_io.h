// VdiIo: block I/O on one VDI through the cluster, the way tgtd's sheepdog backing store does it,
// safe to use from many threads at once (they share one inode cache and a connection pool).
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
// snapshot to the new working VDI on reload, and releases the lock on Close. When its sheep
// fails, the pool moves to the next one and VdiIo takes the lock again there before retrying.
//
// LU fence (kelpie-iscsi): the data calls take an optional fence, the cluster's LU-state
// generation the caller's decisions (reservation checks) rest on. Each data object request then
// carries it, and the sheep refuses the request (kLuStateStale, nothing done) once any target has
// changed LU state since; the caller reloads the state and decides again.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "client/connection_pool.h"
#include "client/pipelined_connection.h"
#include "client/sync_client.h"
#include "proto/inode.h"

namespace kelpie::client {

using LuFence = std::optional<uint32_t>;

class VdiIo {
 public:
  enum class Mode { kUnlocked, kShared };
  // Over one caller-owned connection (single-threaded tools).
  VdiIo(SyncClient& conn, std::string name, std::string tag = "", uint32_t snapid = 0,
        Mode mode = Mode::kUnlocked);
  // Over a shared pool (multi-threaded clients such as kelpie-iscsi).
  VdiIo(ConnectionPool& pool, std::string name, std::string tag = "", uint32_t snapid = 0,
        Mode mode = Mode::kUnlocked);
  ~VdiIo();

  // Resolves name (or the snapshot tag / snapid) and loads its inode. Each call below returns a
  // proto::res code (kNetwork when no sheep could be reached).
  uint32_t Open();
  // Releases a shared lock (no-op when unlocked).
  uint32_t Close();

  uint32_t Read(uint64_t offset, std::span<uint8_t> out, LuFence fence = {});
  // write_back: the sheep acknowledge once the bytes are on every copy (they survive the death
  // of any process) and make them durable at the next Flush; otherwise they are durable on every
  // copy before the acknowledgement. Writes that allocate (create, copy-on-write) are durable
  // either way.
  uint32_t Write(uint64_t offset, std::span<const uint8_t> data, LuFence fence = {},
                 bool write_back = false);
  // Unmaps whole objects (DISCARD_OBJ) and zeroes the mapped parts of partial ones.
  uint32_t Discard(uint64_t offset, uint64_t len, LuFence fence = {});
  // Writes `data` at offset if the bytes there equal `compare`, atomically against every other
  // CompareAndWrite of the same object by any client (the object's first copy holder serializes
  // them). kMiscompare: nothing written, *miscompare_at = offset of the first differing byte.
  // A range that spans two objects is compared and written object by object.
  uint32_t CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                           std::span<const uint8_t> data, uint64_t* miscompare_at,
                           LuFence fence = {});
  // Whether offset is mapped (its object allocated in this VDI or an ancestor), and for how many
  // bytes from offset (≤ len) that stays so. "Unmapped" is checked with the sheep first (another
  // target may have allocated it: initiators such as qemu read zeros without asking for them).
  uint32_t MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                     LuFence fence = {});
  // Makes every write-back write of this VDI durable on every copy (FLUSH_VDI).
  uint32_t Flush(LuFence fence = {});

  // The non-blocking path (kelpie-iscsi's I/O thread). When [offset, offset+len) lies in one
  // object that the cached inode maps (a read) or that this VDI owns (a write: nothing to
  // allocate or copy), and the shared lock is not being taken again, these send that one object
  // request over `conn` (which must name this process as the pool does and reach the sheep
  // named by lock_endpoint()) and return true; done(code) runs on conn's thread when it is
  // answered. Otherwise they return false and send nothing. A code other than kSuccess leaves
  // the rest (reload, snapshot, copy-on-write, failover) to the blocking calls above: the caller
  // redoes the request with them. kNetwork marks the lock to be taken again first.
  using StartDone = std::function<void(uint32_t code)>;
  bool StartRead(PipelinedConnection& conn, uint64_t offset, std::span<uint8_t> out, LuFence fence,
                 StartDone done);
  bool StartWrite(PipelinedConnection& conn, uint64_t offset, std::span<const uint8_t> data,
                  LuFence fence, bool write_back, StartDone done);
  // Where the shared lock was last taken (a pipelined connection must go there), and a count
  // that moves each time it is taken again (connections from before may not be a participant).
  std::string lock_endpoint() const;
  uint64_t lock_epoch() const { return lock_epoch_.load(); }
  // Reloads the inode (after another client changed it).
  uint32_t Reload();
  // Re-reads the inode header (size after `dog vdi resize`) without the index table.
  uint32_t RefreshHeader();

  // Not for concurrent use with writers: the cached inode.
  const proto::Inode& inode() const { return inode_; }
  uint32_t vid() const;
  uint64_t size() const;
  const std::string& name() const { return name_; }
  ConnectionPool& pool() { return *pool_; }

 private:
  struct Snapshot {  // what one object request needs from the cache, read under the lock
    uint32_t vid, owner;
    uint64_t gen;
  };
  Snapshot At(uint32_t idx) const;
  // Runs fn on a pooled connection; on a network failure, retries on a fresh one (re-taking the
  // shared lock first). Returns fn's code or kNetwork.
  template <typename Fn>
  uint32_t Exec(Fn&& fn);
  uint32_t Resolve(SyncClient& c, uint32_t* vid);
  uint32_t LoadInode(SyncClient& c, uint32_t vid);
  // After an answer that says the cache is stale: reload unless another thread already did
  // (gen moved past `seen`). follow_name: re-resolve first (READONLY).
  uint32_t Refresh(uint64_t seen, bool follow_name);
  uint32_t CheckFresh(SyncClient& c, uint32_t vid, LuFence fence);
  uint16_t io_flags() const;
  // write_back: an overwrite the sheep may acknowledge before it is durable (WRITE_BACK).
  ObjTag Tag(LuFence fence, bool write_back = false) const {
    return ObjTag(uint16_t(io_flags() | (write_back ? proto::flag::kWriteBack : 0)), fence);
  }
  // Checks [offset, offset+len) against the VDI (writing: not a snapshot) and calls
  // fn(idx, offset in object, bytes done before, length, whole object) per object it spans,
  // stopping at the first code other than kSuccess.
  template <typename Fn>
  uint32_t ForEachPiece(uint64_t offset, uint64_t len, bool writing, Fn&& fn);
  // Whether [offset, offset+len) may be read or (writing) written: kReadonly on a snapshot,
  // kInvalidParms past the end; *obj_size the VDI's object size.
  uint32_t CheckRange(uint64_t offset, uint64_t len, bool writing, uint64_t* obj_size) const;
  // The one object [offset, offset+len) lies in, for the non-blocking path: false when the range
  // spans objects, is out of bounds, or (writing) the VDI is a snapshot.
  bool OneObject(uint64_t offset, uint64_t len, bool writing, uint32_t* idx, uint64_t* obj_off,
                 Snapshot* at) const;
  // Sends one object request on the non-blocking path.
  bool StartObjectRequest(PipelinedConnection& conn, const proto::Header& h,
                          std::span<const uint8_t> out, std::span<uint8_t> in, StartDone done);
  uint32_t WriteObject(uint32_t idx, uint64_t obj_off, std::span<const uint8_t> data, LuFence fence,
                       bool write_back = false);
  // Makes this VDI own object idx (copy-on-write or zeros) without changing its bytes.
  uint32_t Own(uint32_t idx, const Snapshot& at, LuFence fence);
  uint32_t SetOwner(SyncClient& c, uint32_t vid, uint32_t idx);

  std::unique_ptr<ConnectionPool> own_pool_;
  ConnectionPool* pool_;
  std::string name_, tag_;
  uint32_t snapid_;
  Mode mode_;

  mutable std::shared_mutex mu_;  // guards inode_ and gen_
  proto::Inode inode_;
  uint64_t gen_ = 0;      // bumped on every reload
  std::mutex reload_mu_;  // one reload at a time
  std::mutex relock_mu_;  // one relock at a time
  // A connection failed: take the shared lock again before going on.
  std::atomic<bool> relock_{false};
  std::atomic<uint64_t> lock_epoch_{0};
  mutable std::mutex lock_endpoint_mu_;
  std::string lock_endpoint_;
};

}  // namespace kelpie::client
