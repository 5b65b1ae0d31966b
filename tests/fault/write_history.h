// WriteHistory: what a verified write load did to each block of a VDI, and whether a block's
// bytes are allowed by it. Block contents are derived from (seed, block, seq), so nothing but
// sequence numbers is kept: a block may hold its last acknowledged write or any later write that
// was never acknowledged (a failed write may or may not have landed); anything else is a loss
// (an older acknowledged version) or garbage (bytes no write of this block ever carried).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace kelpie::fault {

// The bytes write `seq` (1, 2, ...) of `block` carries.
std::vector<uint8_t> BlockData(uint64_t seed, uint64_t block, uint64_t seq, size_t size);
// A short content hash (FNV-1a 64) for the journal, so a human can match lines to bytes.
uint64_t ContentHash(std::span<const uint8_t> data);

struct BlockHistory {
  uint64_t last_seq = 0;          // the highest seq ever issued for this block
  uint64_t acked = 0;             // the last acknowledged seq (0: none yet)
  std::vector<uint64_t> unacked;  // seqs after `acked` whose write failed
};

enum class Verdict { kOk, kLost, kGarbage };

class WriteHistory {
 public:
  WriteHistory(uint64_t seed, size_t block_size) : seed_(seed), block_size_(block_size) {}

  // Thread-safe; one writer per block at a time (the caller serializes writes to one block).
  uint64_t NextSeq(uint64_t block);
  void Acknowledged(uint64_t block, uint64_t seq);
  void Failed(uint64_t block, uint64_t seq);

  // Compares `got` (the block read back) with what the history allows. *what says which write
  // the bytes match (or that none does).
  Verdict Check(uint64_t block, std::span<const uint8_t> got, std::string* what) const;

  // Text journal: "seed S block_size B", then per block "block acked hash [unacked:hash ...]".
  void Save(const std::string& path) const;
  static std::unique_ptr<WriteHistory> Load(const std::string& path);

  // Not while writers run.
  const std::map<uint64_t, BlockHistory>& blocks() const { return blocks_; }
  uint64_t seed() const { return seed_; }
  size_t block_size() const { return block_size_; }

 private:
  uint64_t seed_;
  size_t block_size_;
  mutable std::mutex mu_;
  std::map<uint64_t, BlockHistory> blocks_;
};

}  // namespace kelpie::fault
