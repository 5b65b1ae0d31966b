#include "dog/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "client/units.h"

namespace kelpie::dog {

namespace {
constexpr int kBarWidth = 30;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
}  // namespace

Progress::Progress(std::string label, uint64_t total, Unit unit)
    : Progress(std::move(label), total, unit, ::isatty(2) == 1) {}

Progress::Progress(std::string label, uint64_t total, Unit unit, bool enabled)
    : label_(std::move(label)), total_(total), unit_(unit), enabled_(enabled) {}

Progress::~Progress() {
  if (!enabled_) return;
  Draw();
  fmt::print(stderr, "\n");
}

void Progress::Update(uint64_t done) { Update(done, total_); }

void Progress::Update(uint64_t done, uint64_t total) {
  done_ = done;
  total_ = total;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < kRedrawEvery && done_ < total_) return;
  last_draw_ = now;
  Draw();
}

void Progress::Erase() {
  if (!drawn_) return;
  fmt::print(stderr, "\r\x1b[K");
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::Draw() {
  fmt::print(stderr, "\r{}\x1b[K", Render(label_, done_, total_, unit_));
  std::fflush(stderr);
  drawn_ = true;
}

std::string Progress::Render(const std::string& label, uint64_t done, uint64_t total, Unit unit) {
  const double fraction = total == 0 ? 1.0 : std::min(1.0, double(done) / double(total));
  const int filled = int(fraction * kBarWidth);
  std::string bar(size_t(filled), '=');
  if (filled < kBarWidth) bar += '>';
  bar.resize(kBarWidth, ' ');
  const std::string amount =
      unit == Unit::kBytes
          ? fmt::format("{} / {}", client::StrNumber(done, false), client::StrNumber(total, false))
          : fmt::format("{} / {} objects", done, total);
  return fmt::format("{} [{}] {:5.1f}%  {}", label, bar, fraction * 100, amount);
}

}  // namespace kelpie::dog
