// verified_load: a write load whose every acknowledgement is recorded, and the check that the
// cluster kept them. Used by the fault tests (tests/fault/*.py), which kill sheep meanwhile.
//
//   verified_load write --sheep H:P,H:P,... --vdi NAME --journal FILE [--threads T] [--seed S]
//     Writes 64 KiB blocks of seeded random data at random block-aligned offsets of the VDI, each
//     through a random gateway (one client pool per sheep, failing over to the others), T writes
//     in flight (thread t owns the blocks b with b % T == t, so one block has one writer). A write
//     that fails is recorded as unacknowledged and retried, same bytes, through another gateway.
//     Prints a JSON progress line every 250 ms; runs until its stdin reaches EOF, then saves the
//     journal and prints a JSON summary line.
//   verified_load verify --sheep H:P --vdi NAME --journal FILE
//     Reads every journalled block through that one sheep and checks it against the history;
//     prints a JSON summary line and one line per bad block; exits 1 when any block is bad.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "client/connection_pool.h"
#include "client/vdi_io.h"
#include "proto/constants.h"
#include "write_history.h"

namespace kelpie::fault {
namespace {

using client::ConnectionPool;
using client::VdiIo;
constexpr size_t kBlock = 64 * 1024;
constexpr int kPoolTimeoutSec = 20;
constexpr int kMaxAttempts = 60;       // per write, before it stays unacknowledged
constexpr int kAttemptsAfterStop = 2;  // once asked to stop, give a failing write little more

struct Options {
  std::vector<std::string> sheep;
  std::string vdi, journal;
  int threads = 4;
  uint64_t seed = 1;
};

struct Counters {
  std::atomic<uint64_t> acked{0}, failed_attempts{0}, abandoned{0}, retried_ok{0};
};

// One gateway: a pool whose first sheep is `first`, the others following as failover.
struct Gateway {
  std::unique_ptr<ConnectionPool> pool;
  std::unique_ptr<VdiIo> io;
};

std::vector<std::string> Rotated(const std::vector<std::string>& v, size_t first) {
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) out.push_back(v[(first + i) % v.size()]);
  return out;
}

void Writer(int t, const Options& o, std::vector<Gateway>& gws, uint64_t nblocks,
            WriteHistory& hist, const std::atomic<bool>& stop, Counters& n) {
  std::mt19937_64 rng(o.seed * 1000003 + t);
  const uint64_t mine = (nblocks - t + o.threads - 1) / o.threads;
  while (!stop) {
    const uint64_t block = t + o.threads * (rng() % mine);
    const uint64_t seq = hist.NextSeq(block);
    const std::vector<uint8_t> data = BlockData(o.seed, block, seq, kBlock);
    size_t g = rng() % gws.size();
    bool failed_once = false, acked = false;
    for (int attempt = 0, after_stop = 0; attempt < kMaxAttempts && !acked; ++attempt) {
      const uint32_t rc = gws[g].io->Write(block * kBlock, data);
      if (rc == proto::res::kSuccess) {
        hist.Acknowledged(block, seq);
        ++n.acked;
        if (failed_once) ++n.retried_ok;
        acked = true;
        break;
      }
      if (!failed_once) hist.Failed(block, seq);
      failed_once = true;
      ++n.failed_attempts;
      std::fprintf(stderr, "write block %lu seq %lu via %s: result 0x%x; retrying elsewhere\n",
                   static_cast<unsigned long>(block), static_cast<unsigned long>(seq),
                   gws[g].pool->endpoint().c_str(), rc);
      if (stop && ++after_stop >= kAttemptsAfterStop) break;
      if (gws.size() > 1) g = (g + 1 + rng() % (gws.size() - 1)) % gws.size();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!acked) ++n.abandoned;
  }
}

int Write(const Options& o) {
  std::vector<Gateway> gws;
  for (size_t i = 0; i < o.sheep.size(); ++i) {
    Gateway g;
    g.pool = std::make_unique<ConnectionPool>(
        Rotated(o.sheep, i), "verified-load-" + std::to_string(i), kPoolTimeoutSec);
    g.io = std::make_unique<VdiIo>(*g.pool, o.vdi, "", 0, VdiIo::Mode::kShared);
    if (const uint32_t rc = g.io->Open(); rc != proto::res::kSuccess) {
      std::fprintf(stderr, "open %s via %s: result 0x%x\n", o.vdi.c_str(), o.sheep[i].c_str(), rc);
      return 2;
    }
    gws.push_back(std::move(g));
  }
  const uint64_t nblocks = gws[0].io->size() / kBlock;
  if (nblocks < static_cast<uint64_t>(o.threads)) {
    std::fprintf(stderr, "VDI %s is too small for %d writers\n", o.vdi.c_str(), o.threads);
    return 2;
  }
  WriteHistory hist(o.seed, kBlock);
  Counters n;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] { Writer(t, o, gws, nblocks, hist, stop, n); });
  }
  // The caller stops the load by closing our stdin; meanwhile it sees progress lines.
  std::thread eof([&] {
    for (int c = std::getchar(); c != EOF; c = std::getchar()) {
    }
    stop = true;
  });
  while (!stop) {
    std::printf("{\"progress\": true, \"acked\": %lu, \"failed_attempts\": %lu}\n",
                static_cast<unsigned long>(n.acked.load()),
                static_cast<unsigned long>(n.failed_attempts.load()));
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  eof.join();
  for (auto& t : threads) t.join();
  for (auto& g : gws) g.io->Close();
  hist.Save(o.journal);
  uint64_t unacked_blocks = 0;
  for (const auto& [b, h] : hist.blocks()) unacked_blocks += h.unacked.empty() ? 0 : 1;
  std::printf(
      "{\"acked\": %lu, \"failed_attempts\": %lu, \"retried_ok\": %lu, \"abandoned\": %lu, "
      "\"blocks_written\": %zu, \"blocks_with_unacked\": %lu}\n",
      static_cast<unsigned long>(n.acked.load()), static_cast<unsigned long>(n.failed_attempts),
      static_cast<unsigned long>(n.retried_ok), static_cast<unsigned long>(n.abandoned),
      hist.blocks().size(), static_cast<unsigned long>(unacked_blocks));
  return 0;
}

int Verify(const Options& o) {
  const std::unique_ptr<WriteHistory> hist = WriteHistory::Load(o.journal);
  ConnectionPool pool(o.sheep, "verified-load-check", kPoolTimeoutSec);
  VdiIo io(pool, o.vdi);
  if (const uint32_t rc = io.Open(); rc != proto::res::kSuccess) {
    std::fprintf(stderr, "open %s: result 0x%x\n", o.vdi.c_str(), rc);
    return 2;
  }
  uint64_t ok = 0, lost = 0, garbage = 0, unreadable = 0;
  std::vector<uint8_t> buf(hist->block_size());
  for (const auto& [block, h] : hist->blocks()) {
    const uint32_t rc = io.Read(block * hist->block_size(), buf);
    if (rc != proto::res::kSuccess) {
      ++unreadable;
      std::printf("block %lu: read failed, result 0x%x\n", static_cast<unsigned long>(block), rc);
      continue;
    }
    std::string what;
    switch (hist->Check(block, buf, &what)) {
      case Verdict::kOk:
        ++ok;
        continue;
      case Verdict::kLost:
        ++lost;
        break;
      case Verdict::kGarbage:
        ++garbage;
        break;
    }
    std::printf("block %lu via %s: %s\n", static_cast<unsigned long>(block), o.sheep[0].c_str(),
                what.c_str());
  }
  std::printf(
      "{\"sheep\": \"%s\", \"blocks\": %zu, \"ok\": %lu, \"lost\": %lu, \"garbage\": %lu, "
      "\"unreadable\": %lu}\n",
      o.sheep[0].c_str(), hist->blocks().size(), static_cast<unsigned long>(ok),
      static_cast<unsigned long>(lost), static_cast<unsigned long>(garbage),
      static_cast<unsigned long>(unreadable));
  return ok == hist->blocks().size() ? 0 : 1;
}

}  // namespace
}  // namespace kelpie::fault

int main(int argc, char** argv) {
  using namespace kelpie::fault;
  CLI::App app{"verified_load: a recorded write load and its check"};
  app.require_subcommand(1);
  Options o;
  const auto common = [&](CLI::App* sub) {
    sub->add_option("--sheep", o.sheep, "sheep HOST:PORT, comma separated")
        ->required()
        ->delimiter(',');
    sub->add_option("--vdi", o.vdi, "VDI name")->required();
    sub->add_option("--journal", o.journal, "write history file")->required();
  };
  CLI::App* write = app.add_subcommand("write", "run the load until stdin closes");
  common(write);
  write->add_option("--threads", o.threads, "writes in flight")->check(CLI::Range(1, 64));
  write->add_option("--seed", o.seed, "seed of the block contents");
  CLI::App* verify = app.add_subcommand("verify", "check every written block through one sheep");
  common(verify);
  CLI11_PARSE(app, argc, argv);
  try {
    return write->parsed() ? Write(o) : Verify(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verified_load: %s\n", e.what());
    return 2;
  }
}
