#include "client/units.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace kelpie::client {

std::optional<uint64_t> ParseSize(const std::string& text) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.'))
    return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0 || !std::isfinite(v)) return std::nullopt;
  const std::string suffix(end);
  if (suffix.size() > 1) return std::nullopt;
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'B':
        shift = 0;
        break;
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      case 'P':
        shift = 50;
        break;
      default:
        return std::nullopt;
    }
  }
  v = std::ldexp(v, shift);
  if (v >= 18446744073709551615.0) return std::nullopt;
  return uint64_t(v);
}

std::string StrNumber(uint64_t bytes, bool raw) {
  if (raw) return std::to_string(bytes);
  static const char* kUnits[] = {"MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  double size = double(bytes) / (1024.0 * 1024.0);
  size_t i = 0;
  while (i + 1 < std::size(kUnits) && size >= 1024) {
    ++i;
    size /= 1024;
  }
  return size >= 10 ? fmt::format("{:.0f} {}", size, kUnits[i])
                    : fmt::format("{:.1f} {}", size, kUnits[i]);
}

}  // namespace kelpie::client
