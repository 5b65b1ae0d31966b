// BlockBackend: what the SCSI layer needs from storage. KelpieBackend (src/iscsi) serves a Kelpie
// VDI through the cluster; MemBackend (tests) keeps bytes in memory. Implementations are
// thread-safe: the LU calls them from several worker threads at once.
//
// Fences: LoadShared answers with a fence naming the shared state it returned; the data calls take
// the fence of the state the command decided on (reservations) and fail with kStale, doing
// nothing, when any target process has changed the shared state since. That makes a command's
// checks hold at the moment its I/O happens, and lets a backend answer LoadShared from a cache
// (one cluster round trip per READ instead of two): a stale cache is caught at the I/O.
// Fence 0 means "no check".
//
// The non-blocking path: a READ or WRITE whose checks pass on cached state may start its I/O on
// the transport's thread (StartRead / StartWrite) instead of a worker's. A backend that cannot
// (the range needs allocation, the cache is cold, a reconnection is pending) answers false and
// the command takes the blocking path; so does one whose started I/O ends in anything but kOk.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace kelpie::scsi {

enum class IoStatus {
  kOk,
  kError,       // medium / cluster error (→ MEDIUM ERROR or HARDWARE ERROR sense)
  kMiscompare,  // CompareAndWrite: bytes differ
  kNoSpace,     // the cluster is out of space
  kConflict,    // StoreShared: the version moved on (reload and retry)
  kStale,       // a data call's fence is stale: nothing done (reload fresh, decide again)
};

struct SharedLoad {
  std::string state;
  uint64_t version = 0;
  uint64_t fence = 0;
  bool cached = false;  // answered from the backend's cache: may be stale until a fence checks it
};

// The shared-state cache a backend keeps (thread-safe): it answers LoadShared(may_cache) and
// CachedShared, a load with a newer fence replaces an older one, and a data call refused as
// stale drops it.
class SharedLoadCache {
 public:
  // The cached load, marked cached; false when there is none.
  bool Get(SharedLoad* out) const {
    std::lock_guard lk(mu_);
    if (!load_) return false;
    *out = *load_;
    out->cached = true;
    return true;
  }
  void Remember(const SharedLoad& load) {
    std::lock_guard lk(mu_);
    if (!load_ || load_->fence < load.fence) load_ = load;
  }
  void Drop() {
    std::lock_guard lk(mu_);
    load_.reset();
  }

 private:
  mutable std::mutex mu_;
  std::optional<SharedLoad> load_;
};

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // Current size in bytes (it may grow after `dog vdi resize`; the LU reports capacity changed).
  virtual uint64_t Size() = 0;
  virtual IoStatus Read(uint64_t offset, std::span<uint8_t> out, uint64_t fence) = 0;
  // On kOk the bytes are on every live copy. write_back = false: also durable there (FUA, or the
  // write cache disabled). write_back = true: durable only after the next Flush (the LU's
  // volatile write cache, WCE=1); until then they survive the death of any process, not a power
  // loss.
  virtual IoStatus Write(uint64_t offset, std::span<const uint8_t> data, uint64_t fence,
                         bool write_back) = 0;
  // Deallocates [offset, offset+len): afterwards it reads as zeros (LBPRZ=1).
  virtual IoStatus Discard(uint64_t offset, uint64_t len, uint64_t fence) = 0;
  // Makes every write-back write acknowledged so far durable (SYNCHRONIZE CACHE).
  virtual IoStatus Flush(uint64_t fence) = 0;
  // Atomically across every target process of this LU: if the bytes at offset equal `compare`,
  // writes `data` (same length) there. On kMiscompare nothing is written and *miscompare_at is the
  // offset (from `offset`) of the first differing byte.
  virtual IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                                   std::span<const uint8_t> data, uint64_t* miscompare_at,
                                   uint64_t fence) = 0;
  // Provisioning status: whether offset is mapped (allocated) and how many bytes from offset
  // (≤ len, > 0) share that status.
  virtual IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                             uint64_t fence) = 0;

  // State shared by every target process of this LU (persistent reservations, SPC-2
  // reservation, unit attentions, target port groups): an opaque string with a version, kept in
  // the cluster. StoreShared replaces it only if the version is still expect_version (else
  // kConflict); once it returns kOk every other process's fresh LoadShared sees the new state and
  // their fences from before are stale. may_cache lets LoadShared answer from a cache.
  // StoreShared answers the stored version and the fence of the state as stored.
  virtual IoStatus LoadShared(bool may_cache, SharedLoad* out) = 0;
  virtual IoStatus StoreShared(uint64_t expect_version, const std::string& state,
                               uint64_t* new_version, uint64_t* fence) = 0;

  // The non-blocking path. CachedShared / CachedSize answer from the backend's cache (false /
  // nullopt when it would have to ask the cluster). StartRead / StartWrite: as Read / Write,
  // but they return at once (false: nothing started) and `done` runs when the I/O ends, on the
  // thread of the backend's I/O executor, or inside the call when the backend is synchronous.
  // The buffers must stay valid until then.
  using IoDone = std::function<void(IoStatus)>;
  virtual bool CachedShared(SharedLoad* /*out*/) { return false; }
  virtual std::optional<uint64_t> CachedSize() { return std::nullopt; }
  virtual bool StartRead(uint64_t /*offset*/, std::span<uint8_t> /*out*/, uint64_t /*fence*/,
                         IoDone /*done*/) {
    return false;
  }
  virtual bool StartWrite(uint64_t /*offset*/, std::span<const uint8_t> /*data*/,
                          uint64_t /*fence*/, bool /*write_back*/, IoDone /*done*/) {
    return false;
  }

  // Identity: the same on every target of this LU (NAA designator and serial derive from it).
  virtual uint64_t LuIdentity() = 0;
  virtual std::string LuName() = 0;
};

}  // namespace kelpie::scsi
