// ObjectStore: the objects one sheep holds, one file each under DIR/obj, named by the oid in
// 16 hex digits. Every mutation but WriteBack is durable (fdatasync) before it returns (or its
// completion runs), because the gateway acknowledges a client's write as soon as every copy's
// store call has returned; WriteBack's are made durable by Flush (a client's FLUSH_VDI).
// Thread-safe: calls on different objects run in parallel; callers serialize conflicting
// writes to one object if they need ordering. A read never sees a write half applied: data and
// checksums change together under a per-object lock, which is not held across the fdatasync.
//
// Checksums: every object file has a sidecar DIR/obj/<oid>.crc holding one CRC32C (little
// endian) per 4 KiB block of the object (the last block may be shorter), so bit rot or a torn
// write is caught before it is served. Every read verifies the blocks it touches, every write
// verifies the partly overwritten blocks at its edges before mixing new bytes into them; a
// mismatch is logged and answered kChecksumError, and the caller fetches a good copy from
// another sheep and rewrites this one with CreateAndWrite. An object without a sidecar (a store
// written before checksums existed) is trusted once: its sidecar is computed from the file on
// first access, logged.
//
// Crash safety and group commit: a write puts its data and its blocks' checksums in place (page
// cache, under the object's lock), releases the lock, and is then made durable by the store's
// GroupCommit, which syncs the writes submitted meanwhile together (see group_commit.h); the
// write returns (or WriteNoWait's completion runs) only once it is durable. A crash before the
// sync can leave a block whose bytes and checksum disagree (a torn block); it reads as
// kChecksumError and is repaired from another copy like bit rot, so the store never serves
// garbage. CreateAndWrite builds both files aside, synced, and renames them into place.
//
// Space: a write that may need more space than is free (the filesystem's free space, or the
// --capacity limit given to the store) is refused with kNoSpace before anything is written, so
// the object keeps its acknowledged bytes; reads go on.
//
// Stale copies: when a sheep must not trust its copy of an object (it was away while the
// cluster went on), the copy is moved aside to DIR/obj/.stale/<oid>.<epoch> (with its sidecar
// <oid>.<epoch>.crc), never deleted outright, so recovery can fall back on it when no live node
// has the object.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "store/handle_cache.h"

namespace kelpie::store {

class GroupCommit;

class ObjectStore {
 public:
  static constexpr uint64_t kBlockSize = 4096;

  // Creates DIR/obj and DIR/obj/.stale if missing. capacity_bytes > 0 limits the bytes the live
  // objects may occupy (tests use it for a small disk); 0 means the filesystem's size.
  explicit ObjectStore(std::filesystem::path dir, uint64_t capacity_bytes = 0);
  ~ObjectStore();

  // All calls return a proto::res code: kSuccess, kNoObj (no such object), kEio (I/O error,
  // logged), kNoSpace (ENOSPC/EDQUOT or over capacity), kChecksumError (a block failed its
  // checksum, logged).

  // Closes the cached handles of every object, and so forgets their checksums read into memory:
  // the next access reopens the files as they are then (for files changed behind the store's
  // back, as a crash or a test does).
  void ForgetHandles() { handles_.Clear(); }

  // Reads out.size() bytes at offset. Bytes past the end of the file read as zeros.
  uint32_t Read(uint64_t oid, uint64_t offset, std::span<uint8_t> out) const;
  // Overwrites part of an existing object; kNoObj if it does not exist, kInvalidParms past its end.
  uint32_t Write(uint64_t oid, uint64_t offset, std::span<const uint8_t> data);
  // Write without blocking for durability: applies the bytes and returns; on kSuccess, `durable`
  // runs later (on the committer thread) with kSuccess once the write is durable, or with the
  // sync's error. On any other result `durable` never runs. Lets a caller release its own
  // per-object lock before the sync, so later writers of the object join the same batch.
  uint32_t WriteNoWait(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                       std::function<void(uint32_t)> durable);
  // Write-back: applies the write like Write but does not wait for durability; the object is
  // remembered as dirty and made durable by the next Flush covering it. Until then the bytes
  // survive the death of this process (they are in the page cache), not a power loss. A store
  // that starts syncs its whole filesystem once, so writes applied before a crash of the process
  // are durable before it serves again.
  uint32_t WriteBack(uint64_t oid, uint64_t offset, std::span<const uint8_t> data);
  // Makes durable every write-back write applied so far to objects of the VDIs `vids` (every VDI
  // when empty): their files are synced through the group commit. `done` runs once with kSuccess
  // or the first sync error (then the failed objects stay dirty), on the committer thread or,
  // when nothing is dirty, before Flush returns.
  void Flush(const std::vector<uint32_t>& vids, std::function<void(uint32_t)> done);
  // Objects with write-back writes not yet flushed.
  size_t DirtyCount() const;

  // Creates (or replaces) the object atomically — written to a temporary file, synced, renamed —
  // as obj_size bytes: zeros except `data` at `offset`. Readers see the old object or the whole
  // new one, never a torn one.
  uint32_t CreateAndWrite(uint64_t oid, uint64_t obj_size, uint64_t offset,
                          std::span<const uint8_t> data);
  // Removes the object; kNoObj if absent.
  uint32_t Remove(uint64_t oid);
  bool Exists(uint64_t oid) const;
  // Size of the object's file, or nullopt if absent.
  std::optional<uint64_t> Size(uint64_t oid) const;
  // Every oid held (not the stale ones), unordered.
  std::vector<uint64_t> List() const;

  // Every oid with a stale copy, unordered.
  std::vector<uint64_t> ListStale() const;
  // Moves the live copy aside as stale for `epoch` (no-op if absent). The caller chooses the
  // epoch: the last one in which this copy received every write, so epochs order stale copies by
  // the writes they contain.
  void MoveToStale(uint64_t oid, uint32_t epoch);
  // A whole stale copy and the epoch it was set aside for.
  struct StaleCopy {
    uint32_t epoch = 0;
    std::vector<uint8_t> data;
  };
  // Reads the stale copy with the newest epoch, if any and if it passes its checksums.
  std::optional<StaleCopy> ReadStale(uint64_t oid) const;
  // Deletes every stale copy of oid (after it was recovered).
  void DropStale(uint64_t oid);

  // Bytes used by live objects (allocated blocks of data and sidecars) and the capacity (the
  // limit given, else the filesystem's size).
  uint64_t UsedBytes() const;
  uint64_t CapacityBytes() const;

  const std::filesystem::path& dir() const { return obj_dir_; }
  GroupCommit& group_commit() { return *commit_; }

 private:
  std::filesystem::path PathOf(uint64_t oid) const;
  std::filesystem::path CrcPathOf(uint64_t oid) const;
  std::shared_mutex& LockOf(uint64_t oid) const;
  // The object's cached handle, or its files opened now (cached unless it has no sidecar); null
  // with *rc = kNoObj / kEio when it cannot be opened. Caller holds the object's lock.
  std::shared_ptr<ObjectHandle> OpenHandle(uint64_t oid, uint32_t* rc) const;
  // Loads the checksums of blocks [first, first + out.size()) of oid, computing the sidecar
  // from the file if it has none yet. Caller holds the object's lock (shared is enough).
  uint32_t LoadChecksums(uint64_t oid, const ObjectHandle& h, uint64_t first,
                         std::span<uint32_t> out) const;
  // kSuccess if the blocks starting at block `first`, held in `bytes`, match their checksums.
  uint32_t VerifyBlocks(uint64_t oid, const ObjectHandle& h, uint64_t first,
                        std::span<const uint8_t> bytes) const;
  // kNoSpace if `bytes` more might not fit.
  uint32_t CheckSpace(uint64_t oid, uint64_t bytes) const;
  uint64_t ScanUsedBytes() const;
  // syncfs of the store's filesystem; a failure is logged (`when`: "start", "stop").
  void SyncFilesystem(const char* when) const;
  // The first half of a write, under the object's lock: bytes and checksums in place; `handle`
  // holds the files for the sync.
  uint32_t ApplyWrite(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                      std::shared_ptr<ObjectHandle>& handle);

  std::filesystem::path obj_dir_;
  std::filesystem::path stale_dir_;
  uint64_t capacity_;
  mutable std::atomic<int64_t> used_{0};  // allocated bytes of live objects, kept per mutation
  mutable std::array<std::shared_mutex, 64> locks_;
  std::unique_ptr<GroupCommit> commit_;
  mutable HandleCache handles_;  // open files of hot objects (evicted when files change)
  mutable std::mutex dirty_mu_;
  std::unordered_set<uint64_t> dirty_;  // objects with unflushed write-back writes
};

// MetaStore: small named records under DIR (cluster config, epoch history, VDI catalog),
// each replaced atomically (temporary file, fsync, rename, fsync of the directory).
class MetaStore {
 public:
  explicit MetaStore(std::filesystem::path dir);
  bool Put(const std::string& name, std::span<const uint8_t> bytes);
  bool Put(const std::string& name, const std::string& text);
  std::optional<std::string> Get(const std::string& name) const;
  bool Remove(const std::string& name);

 private:
  std::filesystem::path dir_;
};

}  // namespace kelpie::store
