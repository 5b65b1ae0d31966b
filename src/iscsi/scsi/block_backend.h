// BlockBackend: what the SCSI layer needs from storage. KelpieBackend (src/iscsi) serves a Kelpie
// VDI through the cluster; MemBackend (tests) keeps bytes in memory. Implementations are
// thread-safe: the LU calls them from several worker threads at once.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace kelpie::scsi {

enum class IoStatus {
  kOk,
  kError,       // medium / cluster error (→ MEDIUM ERROR or HARDWARE ERROR sense)
  kMiscompare,  // CompareAndWrite: bytes differ
  kNoSpace,     // the cluster is out of space
  kConflict,    // StoreShared: the version moved on (reload and retry)
};

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // Current size in bytes (it may grow after `dog vdi resize`; the LU reports capacity changed).
  virtual uint64_t Size() = 0;
  virtual IoStatus Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // Durable on every live copy when it returns kOk (Kelpie acknowledges only durable writes), so
  // FUA and SYNCHRONIZE CACHE need nothing more than Flush().
  virtual IoStatus Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Deallocates [offset, offset+len): afterwards it reads as zeros (LBPRZ=1).
  virtual IoStatus Discard(uint64_t offset, uint64_t len) = 0;
  virtual IoStatus Flush() = 0;
  // Atomically across every target process of this LU: if the bytes at offset equal `compare`,
  // writes `data` (same length) there. On kMiscompare nothing is written and *miscompare_at is the
  // offset (from `offset`) of the first differing byte.
  virtual IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                                   std::span<const uint8_t> data, uint64_t* miscompare_at) = 0;
  // Provisioning status: whether offset is mapped (allocated) and how many bytes from offset
  // (≤ len, > 0) share that status.
  virtual IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run) = 0;

  // State shared by every target process of this LU (persistent reservations, SPC-2
  // reservation, unit attentions, target port groups): an opaque string with a version, kept in
  // the cluster. StoreShared replaces it only if the version is still expect_version (else
  // kConflict); once it returns kOk every other process's LoadShared sees the new state.
  virtual IoStatus LoadShared(std::string* state, uint64_t* version) = 0;
  virtual IoStatus StoreShared(uint64_t expect_version, const std::string& state,
                               uint64_t* new_version) = 0;

  // Identity: the same on every target of this LU (NAA designator and serial derive from it).
  virtual uint64_t LuIdentity() = 0;
  virtual std::string LuName() = 0;
};

}  // namespace kelpie::scsi
