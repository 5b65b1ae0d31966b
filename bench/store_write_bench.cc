// store_write_bench: concurrent 4 KiB writes through one ObjectStore, the way a sheep's request
// threads issue them. Prints writes per second; with group commit also syncs per write.
//   store_write_bench DIR [threads=16] [writes_per_thread=200] [objects=different|same]
// Each thread overwrites random 4 KiB blocks of its own 4 MiB object (or all of one object).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "proto/constants.h"
#include "store/object_store.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [threads] [writes_per_thread] [different|same]\n", argv[0]);
    return 64;
  }
  const std::filesystem::path dir = argv[1];
  const int threads = argc > 2 ? std::atoi(argv[2]) : 16;
  const int per_thread = argc > 3 ? std::atoi(argv[3]) : 200;
  const bool same = argc > 4 && std::string(argv[4]) == "same";
  constexpr uint64_t kObj = 4 << 20;
  std::filesystem::remove_all(dir);
  kelpie::store::ObjectStore store(dir);
  for (int t = 0; t < (same ? 1 : threads); ++t) {
    const std::vector<uint8_t> fill(kObj, uint8_t(t));
    if (store.CreateAndWrite(uint64_t(t + 1), kObj, 0, fill) != kelpie::proto::res::kSuccess)
      return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng{uint64_t(t)};
      std::vector<uint8_t> block(4096, uint8_t(t));
      const uint64_t oid = same ? 1 : uint64_t(t + 1);
      for (int i = 0; i < per_thread; ++i) {
        const uint64_t off = (rng() % (kObj / 4096)) * 4096;
        if (store.Write(oid, off, block) != kelpie::proto::res::kSuccess) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int total = threads * per_thread;
  std::printf("%d threads, %s, %d writes: %.0f writes/s (%.2f s), %d failed\n", threads,
              same ? "one object" : "one object each", total, total / secs, secs, failures.load());
  std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}
