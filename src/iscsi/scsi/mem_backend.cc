#include "iscsi/scsi/mem_backend.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace kelpie::scsi {
namespace {

uint64_t HashName(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// One simulated target process over a shared MemStore: forwards I/O, caches the shared state.
class MemBackend final : public BlockBackend {
 public:
  explicit MemBackend(std::shared_ptr<MemStore> store) : store_(std::move(store)) {}
  uint64_t Size() override { return store_->Size(); }
  IoStatus Read(uint64_t offset, std::span<uint8_t> out, uint64_t fence) override {
    return Seen(store_->Read(offset, out, fence));
  }
  IoStatus Write(uint64_t offset, std::span<const uint8_t> data, uint64_t fence,
                 bool write_back) override {
    return Seen(store_->Write(offset, data, fence, write_back));
  }
  IoStatus Discard(uint64_t offset, uint64_t len, uint64_t fence) override {
    return Seen(store_->Discard(offset, len, fence));
  }
  IoStatus Flush(uint64_t fence) override { return Seen(store_->Flush(fence)); }
  IoStatus CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                           std::span<const uint8_t> data, uint64_t* miscompare_at,
                           uint64_t fence) override {
    return Seen(store_->CompareAndWrite(offset, compare, data, miscompare_at, fence));
  }
  IoStatus MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                     uint64_t fence) override {
    return Seen(store_->MapStatus(offset, len, mapped, run, fence));
  }
  // The non-blocking path, done synchronously: the LU's fast path runs in every test.
  bool CachedShared(SharedLoad* out) override { return cache_.Get(out); }
  std::optional<uint64_t> CachedSize() override { return store_->Size(); }
  bool StartRead(uint64_t offset, std::span<uint8_t> out, uint64_t fence, IoDone done) override {
    store_->CountStarted();
    done(Read(offset, out, fence));
    return true;
  }
  bool StartWrite(uint64_t offset, std::span<const uint8_t> data, uint64_t fence, bool write_back,
                  IoDone done) override {
    store_->CountStarted();
    done(Write(offset, data, fence, write_back));
    return true;
  }
  IoStatus LoadShared(bool may_cache, SharedLoad* out) override {
    if (may_cache && CachedShared(out)) return IoStatus::kOk;
    IoStatus st = store_->LoadShared(false, out);
    if (st == IoStatus::kOk) cache_.Remember(*out);
    return st;
  }
  IoStatus StoreShared(uint64_t expect_version, const std::string& state, uint64_t* new_version,
                       uint64_t* fence) override {
    IoStatus st = store_->StoreShared(expect_version, state, new_version, fence);
    if (st == IoStatus::kOk) cache_.Remember(SharedLoad{state, *new_version, *fence, false});
    return st;
  }
  uint64_t LuIdentity() override { return store_->LuIdentity(); }
  std::string LuName() override { return store_->LuName(); }

 private:
  IoStatus Seen(IoStatus st) {
    if (st == IoStatus::kStale) cache_.Drop();
    return st;
  }

  std::shared_ptr<MemStore> store_;
  SharedLoadCache cache_;
};

}  // namespace

MemStore::MemStore(std::string name, uint64_t size_bytes)
    : name_(std::move(name)), identity_(HashName(name_)), size_(size_bytes) {}

void MemStore::Resize(uint64_t size_bytes) {
  std::unique_lock lock(data_mu_);
  size_ = size_bytes;
  const uint64_t first_dropped = (size_bytes + kChunkBytes - 1) / kChunkBytes;
  chunks_.erase(chunks_.lower_bound(first_dropped), chunks_.end());
  if (size_bytes % kChunkBytes) {
    auto it = chunks_.find(size_bytes / kChunkBytes);
    if (it != chunks_.end()) {
      std::fill(it->second.begin() + size_bytes % kChunkBytes, it->second.end(), 0);
    }
  }
}

void MemStore::InjectFailures(int count, IoStatus st) {
  std::lock_guard lock(fail_mu_);
  failures_left_ = count;
  failure_ = st;
}

IoStatus MemStore::Admit(uint64_t fence) {
  if (fence != 0 && fence != shared_version_ + 1) return IoStatus::kStale;
  return TakeInjectedFailure();
}

IoStatus MemStore::TakeInjectedFailure() {
  std::lock_guard lock(fail_mu_);
  if (failures_left_ == 0) return IoStatus::kOk;
  --failures_left_;
  return failure_;
}

size_t MemStore::allocated_chunks() const {
  std::shared_lock lock(data_mu_);
  return chunks_.size();
}

uint64_t MemStore::Size() {
  std::shared_lock lock(data_mu_);
  return size_;
}

bool MemStore::InBounds(uint64_t offset, uint64_t len) const {
  return offset <= size_ && len <= size_ - offset;
}

void MemStore::ReadLocked(uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkBytes;
    const size_t n = std::min<uint64_t>(out.size() - done, kChunkBytes - in_chunk);
    auto it = chunks_.find(pos / kChunkBytes);
    if (it == chunks_.end()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, it->second.data() + in_chunk, n);
    }
    done += n;
  }
}

void MemStore::WriteLocked(uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkBytes;
    const size_t n = std::min<uint64_t>(data.size() - done, kChunkBytes - in_chunk);
    auto& chunk = chunks_[pos / kChunkBytes];
    if (chunk.empty()) chunk.resize(kChunkBytes, 0);
    std::memcpy(chunk.data() + in_chunk, data.data() + done, n);
    done += n;
  }
}

IoStatus MemStore::Read(uint64_t offset, std::span<uint8_t> out, uint64_t fence) {
  std::shared_lock admit(shared_mu_);
  if (IoStatus st = Admit(fence); st != IoStatus::kOk) return st;
  std::shared_lock lock(data_mu_);
  if (!InBounds(offset, out.size())) return IoStatus::kError;
  ReadLocked(offset, out);
  return IoStatus::kOk;
}

IoStatus MemStore::Write(uint64_t offset, std::span<const uint8_t> data, uint64_t fence,
                         bool write_back) {
  std::shared_lock admit(shared_mu_);
  if (IoStatus st = Admit(fence); st != IoStatus::kOk) return st;
  std::unique_lock lock(data_mu_);
  if (!InBounds(offset, data.size())) return IoStatus::kError;
  WriteLocked(offset, data);
  ++(write_back ? unflushed_writes_ : durable_writes_);
  return IoStatus::kOk;
}

IoStatus MemStore::Discard(uint64_t offset, uint64_t len, uint64_t fence) {
  std::shared_lock admit(shared_mu_);
  if (IoStatus st = Admit(fence); st != IoStatus::kOk) return st;
  std::unique_lock lock(data_mu_);
  if (!InBounds(offset, len)) return IoStatus::kError;
  uint64_t done = 0;
  while (done < len) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkBytes;
    const uint64_t n = std::min<uint64_t>(len - done, kChunkBytes - in_chunk);
    auto it = chunks_.find(pos / kChunkBytes);
    if (it != chunks_.end()) {
      if (n == kChunkBytes) {
        chunks_.erase(it);  // whole chunk: deallocate
      } else {
        std::memset(it->second.data() + in_chunk, 0, n);  // partial: zero, stays mapped
      }
    }
    done += n;
  }
  return IoStatus::kOk;
}

IoStatus MemStore::Flush(uint64_t fence) {
  std::shared_lock admit(shared_mu_);
  if (IoStatus st = Admit(fence); st != IoStatus::kOk) return st;
  unflushed_writes_ = 0;
  return IoStatus::kOk;
}

IoStatus MemStore::CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                                   std::span<const uint8_t> data, uint64_t* miscompare_at,
                                   uint64_t fence) {
  std::shared_lock admit(shared_mu_);
  if (IoStatus st = Admit(fence); st != IoStatus::kOk) return st;
  if (compare.size() != data.size()) return IoStatus::kError;
  std::unique_lock lock(data_mu_);
  if (!InBounds(offset, data.size())) return IoStatus::kError;
  std::vector<uint8_t> current(compare.size());
  ReadLocked(offset, current);
  auto [at, unused] = std::mismatch(current.begin(), current.end(), compare.begin());
  if (at != current.end()) {
    *miscompare_at = static_cast<uint64_t>(at - current.begin());
    return IoStatus::kMiscompare;
  }
  WriteLocked(offset, data);
  return IoStatus::kOk;
}

IoStatus MemStore::MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                             uint64_t fence) {
  std::shared_lock admit(shared_mu_);
  if (fence != 0 && fence != shared_version_ + 1) return IoStatus::kStale;
  std::shared_lock lock(data_mu_);
  if (len == 0 || !InBounds(offset, len)) return IoStatus::kError;
  const bool first = chunks_.contains(offset / kChunkBytes);
  uint64_t pos = offset;
  while (pos < offset + len && chunks_.contains(pos / kChunkBytes) == first) {
    pos = (pos / kChunkBytes + 1) * kChunkBytes;
  }
  *mapped = first;
  *run = std::min(pos, offset + len) - offset;
  return IoStatus::kOk;
}

IoStatus MemStore::LoadShared(bool, SharedLoad* out) {
  ++load_shared_calls_;
  std::shared_lock lock(shared_mu_);
  *out = SharedLoad{shared_state_, shared_version_, shared_version_ + 1, false};
  return IoStatus::kOk;
}

IoStatus MemStore::StoreShared(uint64_t expect_version, const std::string& state,
                               uint64_t* new_version, uint64_t* fence) {
  ++store_shared_calls_;
  std::unique_lock lock(shared_mu_);
  if (expect_version != shared_version_) return IoStatus::kConflict;
  shared_state_ = state;
  *new_version = ++shared_version_;
  *fence = shared_version_ + 1;
  return IoStatus::kOk;
}

std::shared_ptr<MemStore> MakeMemStore(std::string name, uint64_t size_bytes) {
  return std::make_shared<MemStore>(std::move(name), size_bytes);
}

std::unique_ptr<BlockBackend> MakeMemBackend(std::shared_ptr<MemStore> store) {
  return std::make_unique<MemBackend>(std::move(store));
}

}  // namespace kelpie::scsi
