#include "iscsi/transport/chap.h"

#include <fmt/format.h>
#include <nettle/md5.h>

#include <random>

namespace kelpie::iscsi {

namespace {
constexpr size_t kChallengeLength = 16;
constexpr const char* kMd5Algorithm = "5";
}  // namespace

std::optional<ChapCredentials> ParseChapCredentials(const std::string& spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= spec.size()) return std::nullopt;
  return ChapCredentials{spec.substr(0, colon), spec.substr(colon + 1)};
}

std::array<uint8_t, 16> ChapResponse(uint8_t id, std::string_view secret,
                                     std::span<const uint8_t> challenge) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, 1, &id);
  md5_update(&ctx, secret.size(), reinterpret_cast<const uint8_t*>(secret.data()));
  md5_update(&ctx, challenge.size(), challenge.data());
  std::array<uint8_t, 16> out;
  md5_digest(&ctx, out.size(), out.data());
  return out;
}

std::string ToChapHex(std::span<const uint8_t> bytes) {
  std::string s = "0x";
  for (uint8_t b : bytes) s += fmt::format("{:02x}", b);
  return s;
}

std::optional<std::vector<uint8_t>> FromChapHex(const std::string& s) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return std::nullopt;
  std::string digits = s.substr(2);
  if (digits.size() % 2) digits.insert(digits.begin(), '0');
  std::vector<uint8_t> out;
  out.reserve(digits.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < digits.size(); i += 2) {
    const int hi = nibble(digits[i]), lo = nibble(digits[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(uint8_t(hi << 4 | lo));
  }
  return out;
}

bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ b[i]);
  return diff == 0;
}

ChapAuthenticator::ChapAuthenticator(ChapCredentials initiator,
                                     std::optional<ChapCredentials> mutual)
    : initiator_(std::move(initiator)), mutual_(std::move(mutual)) {}

void ChapAuthenticator::SetChallengeForTest(uint8_t id, std::vector<uint8_t> challenge) {
  id_ = id;
  challenge_ = std::move(challenge);
  fixed_challenge_ = true;
}

ChapAuthenticator::Step ChapAuthenticator::Fail(std::string why) {
  state_ = State::kFailed;
  Step s;
  s.outcome = Outcome::kFailed;
  s.why = std::move(why);
  return s;
}

ChapAuthenticator::Step ChapAuthenticator::Process(const KeyValues& keys) {
  Step step;
  switch (state_) {
    case State::kWaitAlgorithm: {
      const auto algorithms = FindKey(keys, "CHAP_A");
      if (!algorithms) return step;  // nothing yet (e.g. AuthMethod only); wait for CHAP_A
      bool md5 = false;
      size_t pos = 0;
      while (pos <= algorithms->size()) {
        const size_t end = std::min(algorithms->find(',', pos), algorithms->size());
        if (algorithms->substr(pos, end - pos) == kMd5Algorithm) md5 = true;
        pos = end + 1;
      }
      if (!md5) return Fail(fmt::format("CHAP_A={} does not offer MD5 (5)", *algorithms));
      if (!fixed_challenge_) {
        std::random_device rd;
        id_ = uint8_t(rd());
        challenge_.resize(kChallengeLength);
        for (auto& b : challenge_) b = uint8_t(rd());
      }
      step.reply = {{"CHAP_A", kMd5Algorithm},
                    {"CHAP_I", std::to_string(id_)},
                    {"CHAP_C", ToChapHex(challenge_)}};
      state_ = State::kWaitResponse;
      return step;
    }
    case State::kWaitResponse: {
      const auto name = FindKey(keys, "CHAP_N");
      const auto response_hex = FindKey(keys, "CHAP_R");
      if (!name || !response_hex) return Fail("CHAP_N or CHAP_R missing");
      const auto response = FromChapHex(*response_hex);
      if (!response) return Fail(fmt::format("CHAP_R '{}' is not 0x-hex", *response_hex));
      if (*name != initiator_.user) return Fail(fmt::format("unknown CHAP user '{}'", *name));
      const auto expected = ChapResponse(id_, initiator_.secret, challenge_);
      if (!ConstantTimeEqual(*response, expected))
        return Fail(fmt::format("wrong CHAP response from user '{}'", *name));
      // Mutual CHAP: the initiator challenges us.
      const auto their_id = FindKey(keys, "CHAP_I");
      const auto their_challenge_hex = FindKey(keys, "CHAP_C");
      if (their_id || their_challenge_hex) {
        if (!their_id || !their_challenge_hex)
          return Fail("mutual CHAP needs both CHAP_I and CHAP_C");
        if (!mutual_) return Fail("initiator asked for mutual CHAP, none configured");
        const auto id = ParseNumber(*their_id);
        const auto challenge = FromChapHex(*their_challenge_hex);
        if (!id || *id > 255 || !challenge || challenge->empty())
          return Fail("malformed mutual CHAP_I/CHAP_C");
        if (ConstantTimeEqual(*challenge, challenge_))
          return Fail("initiator reflected our CHAP challenge");
        const auto ours = ChapResponse(uint8_t(*id), mutual_->secret, *challenge);
        step.reply = {{"CHAP_N", mutual_->user}, {"CHAP_R", ToChapHex(ours)}};
      }
      state_ = State::kDone;
      step.outcome = Outcome::kAuthenticated;
      return step;
    }
    case State::kDone:
      step.outcome = Outcome::kAuthenticated;
      return step;
    case State::kFailed:
      break;
  }
  return Fail("CHAP exchange already failed");
}

}  // namespace kelpie::iscsi
