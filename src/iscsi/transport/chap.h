// CHAP authentication (RFC 1994 with MD5, as iSCSI uses it: RFC 7143 §12.1.3), target side.
// One-way: the initiator proves it knows the secret of the configured user. Mutual: when the
// initiator also sends CHAP_I/CHAP_C, the target answers with its own user name and response.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iscsi/transport/text_keys.h"

namespace kelpie::iscsi {

struct ChapCredentials {
  std::string user;
  std::string secret;
};

// "USER:SECRET" (the secret may contain ':'); nullopt if either part is empty.
std::optional<ChapCredentials> ParseChapCredentials(const std::string& spec);

// CHAP_R = MD5(id ‖ secret ‖ challenge).
std::array<uint8_t, 16> ChapResponse(uint8_t id, std::string_view secret,
                                     std::span<const uint8_t> challenge);
// "0x"-hex encoding of CHAP values; decoding accepts 0x/0X and an even or odd digit count.
std::string ToChapHex(std::span<const uint8_t> bytes);
std::optional<std::vector<uint8_t>> FromChapHex(const std::string& s);
// Comparison whose time does not depend on where the inputs differ.
bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);

// The target side of one CHAP exchange during the security stage.
class ChapAuthenticator {
 public:
  ChapAuthenticator(ChapCredentials initiator, std::optional<ChapCredentials> mutual);

  enum class Outcome { kContinue, kAuthenticated, kFailed };
  struct Step {
    Outcome outcome = Outcome::kContinue;
    KeyValues reply;  // keys to send back
    std::string why;  // for kFailed
  };
  // Feeds the keys of one security-stage login request (non-CHAP keys are ignored).
  Step Process(const KeyValues& keys);
  bool authenticated() const { return state_ == State::kDone; }
  // For tests: fixes the identifier and challenge instead of random ones.
  void SetChallengeForTest(uint8_t id, std::vector<uint8_t> challenge);

 private:
  enum class State { kWaitAlgorithm, kWaitResponse, kDone, kFailed };
  Step Fail(std::string why);

  ChapCredentials initiator_;
  std::optional<ChapCredentials> mutual_;
  State state_ = State::kWaitAlgorithm;
  uint8_t id_ = 0;
  std::vector<uint8_t> challenge_;
  bool fixed_challenge_ = false;
};

}  // namespace kelpie::iscsi
