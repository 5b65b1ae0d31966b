// Progress: the one progress bar of dog's long commands (vdi read/write/check, node recovery
// --watch). It draws on stderr only when stderr is a terminal, so piped or redirected output
// stays exactly what it was; it redraws at most every 100 ms.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace kelpie::dog {

class Progress {
 public:
  enum class Unit { kBytes, kObjects };
  // `enabled`: draw at all (default: stderr is a terminal).
  Progress(std::string label, uint64_t total, Unit unit);
  Progress(std::string label, uint64_t total, Unit unit, bool enabled);
  ~Progress();  // ends the line if anything was drawn
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of the total so far (the total may change, e.g. recovery discovering more objects).
  void Update(uint64_t done);
  void Update(uint64_t done, uint64_t total);

  // Erases the bar before the caller prints a line of its own (redrawn at the next Update).
  void Erase();

  // The bar line for `done` of `total` (no carriage return), e.g.
  // "read vol   [==========>         ]  52.0%  2.1 MB / 4.0 MB".
  static std::string Render(const std::string& label, uint64_t done, uint64_t total, Unit unit);

 private:
  void Draw();

  std::string label_;
  uint64_t done_ = 0, total_;
  Unit unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace kelpie::dog
