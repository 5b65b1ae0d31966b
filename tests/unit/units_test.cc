#include "client/units.h"

#include <gtest/gtest.h>

namespace kelpie::client {
namespace {

TEST(Units, ParseSize) {
  EXPECT_EQ(ParseSize("4096"), 4096u);
  EXPECT_EQ(ParseSize("1K"), 1024u);
  EXPECT_EQ(ParseSize("10G"), 10ull << 30);
  EXPECT_EQ(ParseSize("1.5m"), 3ull << 19);
  EXPECT_EQ(ParseSize("2T"), 2ull << 40);
  EXPECT_EQ(ParseSize("7b"), 7u);
  EXPECT_FALSE(ParseSize("").has_value());
  EXPECT_FALSE(ParseSize("abc").has_value());
  EXPECT_FALSE(ParseSize("10X").has_value());
  EXPECT_FALSE(ParseSize("10GB").has_value());
  EXPECT_FALSE(ParseSize("-1").has_value());
}

TEST(Units, StrNumber) {
  EXPECT_EQ(StrNumber(4ull << 20, false), "4.0 MB");
  EXPECT_EQ(StrNumber(0, false), "0.0 MB");
  EXPECT_EQ(StrNumber(10ull << 30, false), "10 GB");
  EXPECT_EQ(StrNumber(1536ull << 20, false), "1.5 GB");
  EXPECT_EQ(StrNumber(12345, true), "12345");
}

}  // namespace
}  // namespace kelpie::client
