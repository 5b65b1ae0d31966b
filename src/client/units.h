// Sizes as dog reads and prints them, following sheepdog: "10G", "512M", "1.5T" (powers of 1024,
// suffixes B K M G T P, case-insensitive); printed as "4.0 MB", "10 GB" (MB and up, one decimal
// below 10), or as a plain byte count in raw mode.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace kelpie::client {

std::optional<uint64_t> ParseSize(const std::string& text);
std::string StrNumber(uint64_t bytes, bool raw);

}  // namespace kelpie::client
