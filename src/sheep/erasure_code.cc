#include "sheep/erasure_code.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace kelpie::sheep {

ErasureCode::ErasureCode(int data, int parity)
    : d_(data), p_(parity), matrix_(size_t(data + parity) * data), encode_tables_() {
  if (data < 1 || parity < 1 || data + parity > 255) throw std::invalid_argument("bad D:P");
  gf_gen_cauchy1_matrix(matrix_.data(), d_ + p_, d_);
  encode_tables_.resize(size_t(32) * d_ * p_);
  ec_init_tables(d_, p_, &matrix_[size_t(d_) * d_], encode_tables_.data());
}

const ErasureCode& ErasureCode::Shared(int data, int parity) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::unique_ptr<ErasureCode>> codes;
  std::lock_guard lk(mu);
  auto& c = codes[{data, parity}];
  if (!c) c = std::make_unique<ErasureCode>(data, parity);
  return *c;
}

bool ErasureCode::Rebuild(std::vector<std::vector<uint8_t>>& strips, size_t len,
                          std::span<const int> want) const {
  strips.resize(size_t(d_ + p_));
  std::vector<int> have;
  std::vector<const uint8_t*> have_bufs;
  for (int i = 0; i < d_ + p_ && int(have.size()) < d_; ++i) {
    const bool wanted = std::find(want.begin(), want.end(), i) != want.end();
    if (!wanted && !strips[size_t(i)].empty()) {
      have.push_back(i);
      have_bufs.push_back(strips[size_t(i)].data());
    }
  }
  std::vector<uint8_t*> want_bufs;
  for (int w : want) {
    if (w < 0 || w >= d_ + p_) return false;
    strips[size_t(w)].resize(len);
    want_bufs.push_back(strips[size_t(w)].data());
  }
  return Decode(len, have, have_bufs, want, want_bufs);
}

void ErasureCode::Encode(size_t len, std::span<const uint8_t* const> data,
                         std::span<uint8_t* const> parity) const {
  // isa-l takes non-const pointers but only reads the data strips and tables.
  ec_encode_data(int(len), d_, p_, const_cast<uint8_t*>(encode_tables_.data()),
                 const_cast<uint8_t**>(data.data()), const_cast<uint8_t**>(parity.data()));
}

bool ErasureCode::Decode(size_t len, std::span<const int> have,
                         std::span<const uint8_t* const> have_bufs, std::span<const int> want,
                         std::span<uint8_t* const> want_bufs) const {
  const int n = d_ + p_;
  if (int(have.size()) != d_ || have_bufs.size() != have.size() || want.size() != want_bufs.size())
    return false;
  std::vector<bool> seen(size_t(n), false);
  for (int h : have) {
    if (h < 0 || h >= n || seen[size_t(h)]) return false;
    seen[size_t(h)] = true;
  }
  for (int w : want) {
    if (w < 0 || w >= n) return false;
  }
  if (want.empty()) return true;
  // Rows of the generator for the strips we have; inverting it maps them back to the data.
  std::vector<uint8_t> sub(size_t(d_) * d_), inv(size_t(d_) * d_);
  for (int r = 0; r < d_; ++r)
    std::memcpy(&sub[size_t(r) * d_], &matrix_[size_t(have[size_t(r)]) * d_], size_t(d_));
  if (gf_invert_matrix(sub.data(), inv.data(), d_) != 0) return false;
  // Each wanted strip is (its generator row) x inv applied to the strips we have.
  std::vector<uint8_t> rows(want.size() * size_t(d_), 0);
  for (size_t w = 0; w < want.size(); ++w) {
    const uint8_t* g = &matrix_[size_t(want[w]) * d_];
    for (int c = 0; c < d_; ++c) {
      uint8_t acc = 0;
      for (int k = 0; k < d_; ++k) acc ^= gf_mul(g[k], inv[size_t(k) * d_ + c]);
      rows[w * d_ + size_t(c)] = acc;
    }
  }
  std::vector<uint8_t> tables(size_t(32) * d_ * want.size());
  ec_init_tables(d_, int(want.size()), rows.data(), tables.data());
  ec_encode_data(int(len), d_, int(want.size()), tables.data(),
                 const_cast<uint8_t**>(have_bufs.data()), const_cast<uint8_t**>(want_bufs.data()));
  return true;
}

void ErasureCode::Split(std::span<const uint8_t> object_rows,
                        std::vector<std::vector<uint8_t>>& strips) const {
  const size_t stripe = kChunk * size_t(d_);
  const size_t nstripes = object_rows.size() / stripe;
  strips.resize(size_t(d_));
  for (auto& s : strips) s.resize(nstripes * kChunk);
  for (size_t s = 0; s < nstripes; ++s) {
    for (int c = 0; c < d_; ++c) {
      std::memcpy(&strips[size_t(c)][s * kChunk], &object_rows[s * stripe + size_t(c) * kChunk],
                  kChunk);
    }
  }
}

void ErasureCode::Join(const std::vector<std::vector<uint8_t>>& strips,
                       std::span<uint8_t> object_rows) const {
  const size_t stripe = kChunk * size_t(d_);
  const size_t nstripes = object_rows.size() / stripe;
  for (size_t s = 0; s < nstripes; ++s) {
    for (int c = 0; c < d_; ++c) {
      std::memcpy(&object_rows[s * stripe + size_t(c) * kChunk], &strips[size_t(c)][s * kChunk],
                  kChunk);
    }
  }
}

}  // namespace kelpie::sheep
