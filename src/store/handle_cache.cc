#include "store/handle_cache.h"

namespace kelpie::store {

std::shared_ptr<ObjectHandle> HandleCache::Find(uint64_t oid) {
  std::lock_guard lk(mu_);
  auto it = index_.find(oid);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void HandleCache::Insert(uint64_t oid, std::shared_ptr<ObjectHandle> h) {
  if (capacity_ == 0) return;
  std::shared_ptr<ObjectHandle> dropped;  // closed outside the lock
  std::lock_guard lk(mu_);
  if (auto it = index_.find(oid); it != index_.end()) {
    it->second->second = std::move(h);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(oid, std::move(h));
  index_[oid] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    dropped = std::move(lru_.back().second);
    lru_.pop_back();
  }
}

void HandleCache::Evict(uint64_t oid) {
  std::shared_ptr<ObjectHandle> dropped;  // closed outside the lock
  std::lock_guard lk(mu_);
  auto it = index_.find(oid);
  if (it == index_.end()) return;
  dropped = std::move(it->second->second);
  lru_.erase(it->second);
  index_.erase(it);
}

void HandleCache::Clear() {
  std::list<Entry> dropped;  // closed outside the lock
  std::lock_guard lk(mu_);
  index_.clear();
  dropped.swap(lru_);
}

size_t HandleCache::size() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}

}  // namespace kelpie::store
