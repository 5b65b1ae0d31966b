// The login phase of one connection (RFC 7143 §6, §11.12–11.13): stages and T/C/CSG/NSG rules,
// multi-PDU key text, names and session type, CHAP in the security stage, operational
// negotiation, and Login Response status classes. It consumes Login Request PDUs and produces
// Login Response PDUs; the connection does the I/O and, when the login is ready to complete,
// creates the session (reinstatement, TSIH) and asks for the final response.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "iscsi/transport/chap.h"
#include "iscsi/transport/pdu.h"
#include "iscsi/transport/text_keys.h"

namespace kelpie::iscsi {

// Login Response Status-Class/Detail (class << 8 | detail).
namespace login_status {
inline constexpr uint16_t kSuccess = 0x0000;
inline constexpr uint16_t kInitiatorError = 0x0200;
inline constexpr uint16_t kAuthenticationFailure = 0x0201;
inline constexpr uint16_t kTargetNotFound = 0x0203;
inline constexpr uint16_t kUnsupportedVersion = 0x0205;
inline constexpr uint16_t kTooManyConnections = 0x0206;
inline constexpr uint16_t kMissingParameter = 0x0207;
inline constexpr uint16_t kSessionTypeNotSupported = 0x0209;
inline constexpr uint16_t kSessionDoesNotExist = 0x020a;
inline constexpr uint16_t kTargetError = 0x0300;
inline constexpr uint16_t kOutOfResources = 0x0302;
}  // namespace login_status

struct LoginConfig {
  TargetLimits limits;
  std::optional<ChapCredentials> chap;         // required one-way CHAP (initiator's user/secret)
  std::optional<ChapCredentials> mutual_chap;  // our name/secret for mutual CHAP
  uint16_t portal_group_tag = 1;
  uint32_t cmdsn_window = 128;
  // Whether a Normal session may log in to this target name (may open it lazily).
  std::function<bool(const std::string&)> target_exists;
};

class Login {
 public:
  explicit Login(const LoginConfig& config);

  struct Step {
    enum class Kind {
      kReply,     // send `response`, wait for the next request
      kFail,      // send `response` (non-zero status), then close the connection
      kComplete,  // the initiator may enter full feature phase: create the session, then send
                  // FinalResponse(tsih) (or FailResponse)
    };
    Kind kind = Kind::kReply;
    Pdu response;
    std::string why;  // for kFail: one line for the log
  };
  Step Process(const Pdu& request);

  // The Login Final-Response carrying the new or joined session's TSIH.
  Pdu FinalResponse(uint16_t tsih);
  // A failure decided by the caller after kComplete (e.g. 0x020A).
  Pdu FailResponse(uint16_t status);

  // What the login established (valid once Process returned kComplete).
  const std::string& initiator_name() const { return initiator_name_; }
  const std::string& target_name() const { return target_name_; }
  bool discovery() const { return discovery_; }
  const std::array<uint8_t, 6>& isid() const { return isid_; }
  std::string isid_hex() const;
  uint16_t requested_tsih() const { return tsih_; }
  uint16_t cid() const { return cid_; }
  const SessionParams& params() const { return negotiator_.params(); }
  uint32_t exp_cmdsn() const { return exp_cmdsn_; }  // the first command's CmdSN
  uint32_t next_statsn() const { return statsn_; }   // StatSN after the final response

 private:
  enum class Stage : uint8_t { kSecurity = 0, kOperational = 1, kFullFeature = 3 };
  Step Fail(uint16_t status, std::string why);
  Pdu MakeResponse(uint8_t flags, KeyValues keys, uint16_t status);
  Step HandleFirstRequest(const KeyValues& keys);
  // Security stage keys; returns a failure step if authentication failed.
  std::optional<Step> Authenticate(const KeyValues& keys, KeyValues& reply, bool& ready);
  void Negotiate(const KeyValues& keys, NegotiationPhase phase, KeyValues& reply,
                 std::optional<Step>& failure);

  const LoginConfig& config_;
  Negotiator negotiator_;
  std::optional<ChapAuthenticator> chap_;
  enum class Auth { kUndecided, kNone, kChap } auth_ = Auth::kUndecided;
  bool authenticated_ = false;

  bool first_ = true;
  int requests_ = 0;
  Stage stage_ = Stage::kSecurity;
  std::vector<uint8_t> pending_text_;  // key text continued with C=1
  uint32_t itt_ = 0;
  std::array<uint8_t, 6> isid_{};
  uint16_t tsih_ = 0, cid_ = 0;
  uint32_t statsn_ = 0, exp_cmdsn_ = 0;
  uint8_t final_flags_ = 0;  // flags of the completing response (T, CSG, NSG)
  KeyValues final_keys_;     // keys of the completing response
  std::string initiator_name_, target_name_;
  bool discovery_ = false;
  bool first_response_sent_ = false;
};

}  // namespace kelpie::iscsi
