// HandleCache: open descriptors of recently used objects — the data file and its checksum sidecar,
// with the size and allocation seen when they were opened — so that a read or write of a hot
// object costs no open, fstat or close. Least recently used entries are dropped beyond the
// capacity. Entries are shared: a handle dropped (or evicted) while a caller uses it stays open
// until that caller is done.
//
// The cache does not watch the filesystem: its owner (ObjectStore) evicts an object whenever the
// object's files are replaced, renamed or removed, under the object's exclusive lock, so a handle
// found under the object's lock always names its live files. Thread-safe.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/file_io.h"

namespace kelpie::store {

struct ObjectHandle {
  Fd data;
  Fd crc;                  // not ok(): the object has no sidecar yet (a store from before them)
  uint64_t size = 0;       // bytes of the data file
  int64_t data_alloc = 0;  // bytes of disk blocks the data file has (st_blocks * 512)
  bool allocated = false;  // data_alloc covers size: overwrites need no new space
  // The sidecar's checksums, read whole on the first verified read of an object of at most
  // kMaxCachedBlocks blocks and kept in step by every write through this handle (writes hold the
  // object's exclusive lock), so a hot object's reads cost one pread instead of two. Empty: not
  // read yet (or not cached).
  static constexpr size_t kMaxCachedBlocks = 4096;
  mutable std::mutex crc_mu;
  mutable std::vector<uint32_t> crc_table;
};

class HandleCache {
 public:
  explicit HandleCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<ObjectHandle> Find(uint64_t oid);
  // Caches h for oid (replacing an entry), dropping the least recently used beyond capacity.
  void Insert(uint64_t oid, std::shared_ptr<ObjectHandle> h);
  void Evict(uint64_t oid);
  void Clear();
  size_t size() const;

 private:
  using Entry = std::pair<uint64_t, std::shared_ptr<ObjectHandle>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

}  // namespace kelpie::store
