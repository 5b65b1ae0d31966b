// MemStore: an in-memory LU (bytes, provisioning map and shared state), thread-safe. Each
// MakeMemBackend(store) is one "target process" view of it: two LogicalUnits built on two backends
// of one store behave as two kelpie-iscsi processes serving one VDI (shared PR, UA and CAW
// atomicity). Used by `kelpie-iscsi --ramdisk NAME:MiB` and the unit tests. Each backend caches
// the shared state as KelpieBackend does (fences catch a stale cache), so the tests exercise that
// path; the store's fence is its shared-state version + 1.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "iscsi/scsi/block_backend.h"

namespace kelpie::scsi {

class MemStore final : public BlockBackend {
 public:
  static constexpr uint64_t kChunkBytes = 4ull << 20;  // allocation (and MapStatus) granularity

  MemStore(std::string name, uint64_t size_bytes);

  // Grows or shrinks the LU (data beyond a shrunk end is dropped), like `dog vdi resize`.
  void Resize(uint64_t size_bytes);
  // The next `count` Read/Write/Discard/CompareAndWrite/Flush calls fail with `st` (tests).
  void InjectFailures(int count, IoStatus st);
  uint64_t load_shared_calls() const { return load_shared_calls_.load(); }
  uint64_t store_shared_calls() const { return store_shared_calls_.load(); }
  // READs and WRITEs started on the non-blocking path (StartRead / StartWrite), by any backend.
  uint64_t started_calls() const { return started_calls_.load(); }
  void CountStarted() { ++started_calls_; }
  size_t allocated_chunks() const;
  // Writes acknowledged as durable (write_back = false), and write-back writes not yet covered by
  // a Flush (the LU's volatile cache, as tests see it).
  uint64_t durable_writes() const { return durable_writes_.load(); }
  uint64_t unflushed_writes() const { return unflushed_writes_.load(); }

  uint64_t Size() override;
  IoStatus Read(uint64_t offset, std::span<uint8_t> out, uint64_t fence = 0) override;
  IoStatus Write(uint64_t offset, std::span<const uint8_t> data, uint64_t fence = 0,
                 bool write_back = false) override;
  IoStatus Discard(uint64_t offset, uint64_t len, uint64_t fence = 0) override;
  IoStatus Flush(uint64_t fence = 0) override;
  IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                           std::span<const uint8_t> data, uint64_t* miscompare_at,
                           uint64_t fence = 0) override;
  IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                     uint64_t fence = 0) override;
  IoStatus LoadShared(bool may_cache, SharedLoad* out) override;
  IoStatus StoreShared(uint64_t expect_version, const std::string& state, uint64_t* new_version,
                       uint64_t* fence) override;
  uint64_t LuIdentity() override { return identity_; }
  std::string LuName() override { return name_; }

 private:
  bool InBounds(uint64_t offset, uint64_t len) const;
  // Checks the fence (0: none) and the injected failures; the caller holds shared_mu_ shared for
  // its whole call, so no shared-state change can slip between the check and the I/O.
  IoStatus Admit(uint64_t fence);
  IoStatus TakeInjectedFailure();
  void ReadLocked(uint64_t offset, std::span<uint8_t> out) const;
  void WriteLocked(uint64_t offset, std::span<const uint8_t> data);

  const std::string name_;
  const uint64_t identity_;

  mutable std::shared_mutex data_mu_;
  uint64_t size_;
  std::map<uint64_t, std::vector<uint8_t>> chunks_;  // chunk index → kChunkBytes bytes

  std::shared_mutex shared_mu_;
  std::string shared_state_;
  uint64_t shared_version_ = 0;

  std::mutex fail_mu_;
  int failures_left_ = 0;
  IoStatus failure_ = IoStatus::kOk;

  std::atomic<uint64_t> load_shared_calls_{0}, store_shared_calls_{0}, started_calls_{0};
  std::atomic<uint64_t> durable_writes_{0}, unflushed_writes_{0};
};

std::shared_ptr<MemStore> MakeMemStore(std::string name, uint64_t size_bytes);
// One process's backend over `store` (keeps it alive); create one per LogicalUnit.
std::unique_ptr<BlockBackend> MakeMemBackend(std::shared_ptr<MemStore> store);

}  // namespace kelpie::scsi
