// ObjectStore: the objects one sheep holds, one file each under DIR/obj, named by the oid in
// 16 hex digits. Every mutation is durable (fdatasync) before it returns, because the gateway
// acknowledges a client's write as soon as every copy's store call has returned.
// Thread-safe: calls on different objects run in parallel; callers serialize conflicting
// writes to one object if they need ordering.
//
// Stale copies: when a sheep must not trust its copy of an object (it was away while the
// cluster went on), the copy is moved aside to DIR/obj/.stale/<oid>.<epoch>, never deleted
// outright, so recovery can fall back on it when no live node has the object.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

namespace kelpie::store {

class ObjectStore {
 public:
  // Creates DIR/obj and DIR/obj/.stale if missing.
  explicit ObjectStore(std::filesystem::path dir);

  // All calls return a proto::res code: kSuccess, kNoObj (no such object), kEio (I/O error,
  // logged), kNoSpace (ENOSPC/EDQUOT).

  // Reads out.size() bytes at offset. Bytes past the end of the file read as zeros.
  uint32_t Read(uint64_t oid, uint64_t offset, std::span<uint8_t> out) const;
  // Overwrites part of an existing object; kNoObj if it does not exist.
  uint32_t Write(uint64_t oid, uint64_t offset, std::span<const uint8_t> data);
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
  // Reads the stale copy with the newest epoch, if any.
  std::optional<StaleCopy> ReadStale(uint64_t oid) const;
  // Deletes every stale copy of oid (after it was recovered).
  void DropStale(uint64_t oid);

  // Bytes used by live objects (allocated blocks) and the filesystem's capacity.
  uint64_t UsedBytes() const;
  uint64_t CapacityBytes() const;

  const std::filesystem::path& dir() const { return obj_dir_; }

 private:
  std::filesystem::path PathOf(uint64_t oid) const;
  std::filesystem::path obj_dir_;
  std::filesystem::path stale_dir_;
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
