// HandleCache: least recently used entries go beyond the capacity, an evicted handle stays usable
// by whoever holds it, and Insert replaces an entry.
#include "store/handle_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>

namespace kelpie::store {
namespace {

std::shared_ptr<ObjectHandle> Handle() {
  auto h = std::make_shared<ObjectHandle>();
  h->data = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return h;
}

TEST(HandleCacheTest, DropsLeastRecentlyUsed) {
  HandleCache c(2);
  auto a = Handle(), b = Handle(), d = Handle();
  c.Insert(1, a);
  c.Insert(2, b);
  EXPECT_EQ(c.Find(1), a);  // 1 is now the most recent
  c.Insert(3, d);           // drops 2
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.Find(2), nullptr);
  EXPECT_EQ(c.Find(1), a);
  EXPECT_EQ(c.Find(3), d);
  EXPECT_TRUE(b->data.ok());  // a dropped handle still belongs to its holders
}

TEST(HandleCacheTest, EvictAndReplace) {
  HandleCache c(4);
  auto a = Handle(), b = Handle();
  c.Insert(7, a);
  c.Insert(7, b);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.Find(7), b);
  c.Evict(7);
  c.Evict(8);  // absent: nothing happens
  EXPECT_EQ(c.Find(7), nullptr);
  EXPECT_EQ(c.size(), 0u);
  HandleCache none(0);
  none.Insert(1, a);
  EXPECT_EQ(none.Find(1), nullptr);
}

}  // namespace
}  // namespace kelpie::store
