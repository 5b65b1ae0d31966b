// ErasureCode against a reference: a plain GF(2^8) implementation written here (polynomial 0x11D,
// the Cauchy generator 1 / (row XOR column) below the identity), for every D:P Kelpie accepts,
// and decoding from random erasure patterns of up to P strips.
#include "sheep/erasure_code.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "proto/ec.h"

namespace kelpie::sheep {
namespace {

uint8_t RefMul(uint8_t a, uint8_t b) {
  unsigned acc = 0, x = a;
  for (int bit = 0; bit < 8; ++bit) {
    if (b & (1u << bit)) acc ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11D;
  }
  return uint8_t(acc);
}

uint8_t RefInv(uint8_t a) {
  for (unsigned b = 1; b < 256; ++b) {
    if (RefMul(a, uint8_t(b)) == 1) return uint8_t(b);
  }
  return 0;
}

// Parity strip j (0-based) of the data strips, computed byte by byte.
std::vector<uint8_t> RefParity(const std::vector<std::vector<uint8_t>>& data, int j) {
  const int d = int(data.size());
  std::vector<uint8_t> out(data[0].size(), 0);
  for (int c = 0; c < d; ++c) {
    const uint8_t coef = RefInv(uint8_t((d + j) ^ c));
    for (size_t b = 0; b < out.size(); ++b) out[b] ^= RefMul(coef, data[size_t(c)][b]);
  }
  return out;
}

std::vector<std::pair<int, int>> AllPolicies() {
  std::vector<std::pair<int, int>> out;
  for (int d : {2, 4, 8, 16}) {
    for (int p = 1; p <= proto::kEcMaxParity; ++p) out.emplace_back(d, p);
  }
  return out;
}

TEST(ErasureCode, ReferenceFieldIsTheUsualOne) {
  EXPECT_EQ(RefMul(2, 0x80), 0x1D);
  EXPECT_EQ(RefMul(RefInv(0x53), 0x53), 1);
}

TEST(ErasureCode, EncodeMatchesReferenceForEveryPolicy) {
  std::mt19937 rng(7);
  constexpr size_t kLen = 192;
  for (auto [d, p] : AllPolicies()) {
    SCOPED_TRACE(testing::Message() << d << ":" << p);
    ErasureCode code(d, p);
    std::vector<std::vector<uint8_t>> data(static_cast<size_t>(d), std::vector<uint8_t>(kLen));
    for (auto& s : data) std::generate(s.begin(), s.end(), [&] { return uint8_t(rng()); });
    std::vector<std::vector<uint8_t>> parity(static_cast<size_t>(p), std::vector<uint8_t>(kLen));
    std::vector<const uint8_t*> dp;
    std::vector<uint8_t*> pp;
    for (auto& s : data) dp.push_back(s.data());
    for (auto& s : parity) pp.push_back(s.data());
    code.Encode(kLen, dp, pp);
    for (int j = 0; j < p; ++j) ASSERT_EQ(parity[size_t(j)], RefParity(data, j)) << "parity " << j;
  }
}

TEST(ErasureCode, DecodesRandomErasuresForEveryPolicy) {
  std::mt19937 rng(11);
  constexpr size_t kLen = 128;
  for (auto [d, p] : AllPolicies()) {
    SCOPED_TRACE(testing::Message() << d << ":" << p);
    ErasureCode code(d, p);
    const int n = d + p;
    std::vector<std::vector<uint8_t>> strips(static_cast<size_t>(n), std::vector<uint8_t>(kLen));
    for (int i = 0; i < d; ++i) {
      std::generate(strips[size_t(i)].begin(), strips[size_t(i)].end(),
                    [&] { return uint8_t(rng()); });
    }
    std::vector<const uint8_t*> dp;
    std::vector<uint8_t*> pp;
    for (int i = 0; i < n; ++i)
      (i < d ? (void)dp.push_back(strips[size_t(i)].data())
             : (void)pp.push_back(strips[size_t(i)].data()));
    code.Encode(kLen, dp, pp);
    for (int trial = 0; trial < 4; ++trial) {
      // Lose `lost` random strips (P of them in the first trial), rebuild them from D survivors.
      const int lost = trial == 0 ? p : 1 + int(rng() % unsigned(p));
      std::vector<int> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<int> want(order.begin(), order.begin() + lost);
      std::vector<int> have(order.begin() + lost, order.begin() + lost + d);
      std::vector<const uint8_t*> have_bufs;
      for (int h : have) have_bufs.push_back(strips[size_t(h)].data());
      std::vector<std::vector<uint8_t>> rebuilt(want.size(), std::vector<uint8_t>(kLen, 0xAA));
      std::vector<uint8_t*> want_bufs;
      for (auto& r : rebuilt) want_bufs.push_back(r.data());
      ASSERT_TRUE(code.Decode(kLen, have, have_bufs, want, want_bufs));
      for (size_t w = 0; w < want.size(); ++w)
        ASSERT_EQ(rebuilt[w], strips[size_t(want[w])]) << "strip " << want[w];
    }
  }
}

TEST(ErasureCode, DecodeRejectsTooFewOrRepeatedStrips) {
  ErasureCode code(4, 2);
  std::vector<uint8_t> buf(16);
  const std::vector<const uint8_t*> bufs(4, buf.data());
  std::vector<uint8_t> out(16);
  std::vector<uint8_t*> outs{out.data()};
  const std::vector<int> want{5};
  EXPECT_FALSE(code.Decode(16, std::vector<int>{0, 1, 1, 2}, bufs, want, outs));
  EXPECT_FALSE(code.Decode(16, std::vector<int>{0, 1, 2, 9}, bufs, want, outs));
  EXPECT_FALSE(code.Decode(16, std::vector<int>{0, 1, 2}, std::span(bufs).first(3), want, outs));
}

TEST(ErasureCode, SplitAndJoinInterleaveChunks) {
  ErasureCode code(2, 1);
  const size_t k = ErasureCode::kChunk;
  std::vector<uint8_t> obj(4 * k);
  for (size_t i = 0; i < obj.size(); ++i) obj[i] = uint8_t(i / k);  // chunk numbers 0,1,2,3
  std::vector<std::vector<uint8_t>> strips;
  code.Split(obj, strips);
  ASSERT_EQ(strips.size(), 2u);
  EXPECT_EQ(strips[0][0], 0);
  EXPECT_EQ(strips[0][k], 2);  // stripe 1, chunk 0
  EXPECT_EQ(strips[1][0], 1);
  EXPECT_EQ(strips[1][k], 3);
  std::vector<uint8_t> back(obj.size());
  code.Join(strips, back);
  EXPECT_EQ(back, obj);
}

TEST(ErasureCode, CopyPolicyAndStripKeys) {
  EXPECT_EQ(proto::EcCopyPolicy(2, 1), 0x11);
  EXPECT_EQ(proto::EcCopyPolicy(16, 15), 0x8F);
  EXPECT_EQ(proto::EcFromCopyPolicy(0x42).data, 8);
  EXPECT_EQ(proto::EcFromCopyPolicy(0x42).parity, 2);
  EXPECT_FALSE(proto::EcFromCopyPolicy(0).coded());
  EXPECT_FALSE(proto::EcFromCopyPolicy(0x30).coded());  // D=6
  EXPECT_FALSE(proto::ValidEc(3, 1));
  EXPECT_FALSE(proto::ValidEc(4, 16));
  const uint64_t oid = proto::VidToDataOid(0x7c2b25, 1048575);
  for (int i = 0; i < proto::kEcMaxStrips; ++i) {
    const uint64_t key = proto::StripKey(oid, i);
    EXPECT_TRUE(proto::IsStripKey(key));
    EXPECT_EQ(proto::StripOfKey(key), i);
    EXPECT_EQ(proto::ObjectOfKey(key), oid);
    proto::Header h;
    proto::SetStoreKey(h, key);
    EXPECT_EQ(h.oid(), oid);
    EXPECT_EQ(proto::StoreKeyOf(h), key);
  }
  EXPECT_FALSE(proto::IsStripKey(oid));
  EXPECT_FALSE(proto::IsStripKey(proto::VidToInodeOid(0x7c2b25)));
}

}  // namespace
}  // namespace kelpie::sheep
