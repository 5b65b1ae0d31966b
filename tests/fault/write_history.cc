#include "write_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kelpie::fault {

namespace {
uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

std::vector<uint8_t> BlockData(uint64_t seed, uint64_t block, uint64_t seq, size_t size) {
  uint64_t state = seed;
  state ^= SplitMix(state) ^ block * 0x100000001b3ULL;
  state ^= SplitMix(state) ^ seq * 0xc2b2ae3d27d4eb4fULL;
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t v = SplitMix(state);
    for (size_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return out;
}

uint64_t ContentHash(std::span<const uint8_t> data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : data) h = (h ^ b) * 0x100000001b3ULL;
  return h;
}

uint64_t WriteHistory::NextSeq(uint64_t block) {
  std::lock_guard lk(mu_);
  return ++blocks_[block].last_seq;
}

void WriteHistory::Acknowledged(uint64_t block, uint64_t seq) {
  std::lock_guard lk(mu_);
  BlockHistory& h = blocks_[block];
  if (seq < h.acked) return;  // an older write's late ack changes nothing that came after it
  h.acked = seq;
  std::erase_if(h.unacked, [seq](uint64_t s) { return s <= seq; });
}

void WriteHistory::Failed(uint64_t block, uint64_t seq) {
  std::lock_guard lk(mu_);
  BlockHistory& h = blocks_[block];
  if (seq > h.acked && std::find(h.unacked.begin(), h.unacked.end(), seq) == h.unacked.end()) {
    h.unacked.push_back(seq);
  }
}

Verdict WriteHistory::Check(uint64_t block, std::span<const uint8_t> got, std::string* what) const {
  std::lock_guard lk(mu_);
  const auto it = blocks_.find(block);
  const BlockHistory none;
  const BlockHistory& h = it == blocks_.end() ? none : it->second;
  const auto matches = [&](uint64_t seq) {
    if (seq == 0) return std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; });
    const std::vector<uint8_t> want = BlockData(seed_, block, seq, block_size_);
    return std::equal(got.begin(), got.end(), want.begin(), want.end());
  };
  if (matches(h.acked)) {
    *what = fmt::format("last acknowledged write {}", h.acked);
    return Verdict::kOk;
  }
  for (uint64_t s : h.unacked) {
    if (matches(s)) {
      *what = fmt::format("unacknowledged write {} (after acknowledged {})", s, h.acked);
      return Verdict::kOk;
    }
  }
  for (uint64_t s = 0; s < h.acked; ++s) {
    if (matches(s)) {
      *what = fmt::format("LOST: holds older write {} instead of acknowledged {} (hash {:016x})", s,
                          h.acked, ContentHash(got));
      return Verdict::kLost;
    }
  }
  *what = fmt::format("GARBAGE: bytes of no write of this block (hash {:016x}; acknowledged {})",
                      ContentHash(got), h.acked);
  return Verdict::kGarbage;
}

void WriteHistory::Save(const std::string& path) const {
  std::lock_guard lk(mu_);
  std::ofstream f(path, std::ios::trunc);
  f << "seed " << seed_ << " block_size " << block_size_ << "\n";
  const auto hash = [&](uint64_t block, uint64_t seq) {
    return seq == 0 ? 0 : ContentHash(BlockData(seed_, block, seq, block_size_));
  };
  for (const auto& [block, h] : blocks_) {
    f << fmt::format("{} {} {:016x}", block, h.acked, hash(block, h.acked));
    for (uint64_t s : h.unacked) f << fmt::format(" {}:{:016x}", s, hash(block, s));
    f << "\n";
  }
  if (!f.flush()) throw std::runtime_error("cannot write journal " + path);
}

std::unique_ptr<WriteHistory> WriteHistory::Load(const std::string& path) {
  std::ifstream f(path);
  std::string word1, word2;
  uint64_t seed = 0;
  size_t block_size = 0;
  if (!(f >> word1 >> seed >> word2 >> block_size) || word1 != "seed" || word2 != "block_size") {
    throw std::runtime_error("not a write journal: " + path);
  }
  auto hist = std::make_unique<WriteHistory>(seed, block_size);
  std::string line;
  std::getline(f, line);
  while (std::getline(f, line)) {
    std::istringstream in(line);
    uint64_t block = 0;
    BlockHistory h;
    std::string hash, item;
    if (!(in >> block >> h.acked >> hash)) continue;
    while (in >> item) h.unacked.push_back(std::stoull(item.substr(0, item.find(':'))));
    h.last_seq = std::max(h.acked, h.unacked.empty() ? 0 : h.unacked.back());
    hist->blocks_[block] = std::move(h);
  }
  return hist;
}

}  // namespace kelpie::fault
