#include "iscsi/transport/login.h"

#include <fmt/format.h>

#include <algorithm>

namespace kelpie::iscsi {

namespace {
constexpr size_t kMaxLoginText = 65536;  // accumulated key text of one C-bit sequence
constexpr int kMaxLoginRequests = 64;    // a login that does not converge is failed
constexpr uint8_t kCsgShift = 2;

bool IsSecurityKey(const std::string& key) {
  return key == "AuthMethod" || key.rfind("CHAP_", 0) == 0;
}
}  // namespace

Login::Login(const LoginConfig& config) : config_(config), negotiator_(config.limits) {}

std::string Login::isid_hex() const {
  std::string s;
  for (uint8_t b : isid_) s += fmt::format("{:02x}", b);
  return s;
}

Pdu Login::MakeResponse(uint8_t flags, KeyValues keys, uint16_t status) {
  Pdu r = Pdu::Make(op::kLoginResponse, flags, itt_);
  std::copy(isid_.begin(), isid_.end(), r.bhs.begin() + 8);
  r.set_u32(off::kStatSn, statsn_++);
  r.set_u32(off::kExpCmdSn, exp_cmdsn_);
  r.set_u32(off::kMaxCmdSn, exp_cmdsn_ + config_.cmdsn_window - 1);
  r.set_u8(36, uint8_t(status >> 8));
  r.set_u8(37, uint8_t(status));
  r.set_data(SerializeTextKeys(keys));
  first_response_sent_ = true;
  return r;
}

Login::Step Login::Fail(uint16_t status, std::string why) {
  Step s;
  s.kind = Step::Kind::kFail;
  s.response = MakeResponse(uint8_t(uint8_t(stage_) << kCsgShift), {}, status);
  s.why = std::move(why);
  return s;
}

Pdu Login::FailResponse(uint16_t status) {
  return MakeResponse(uint8_t(uint8_t(stage_) << kCsgShift), {}, status);
}

Pdu Login::FinalResponse(uint16_t tsih) {
  tsih_ = tsih;
  Pdu r = MakeResponse(final_flags_, final_keys_, login_status::kSuccess);
  r.set_u16(14, tsih);
  return r;
}

Login::Step Login::HandleFirstRequest(const KeyValues& keys) {
  const auto initiator = FindKey(keys, "InitiatorName");
  if (!initiator || initiator->empty())
    return Fail(login_status::kMissingParameter, "no InitiatorName in the first login request");
  initiator_name_ = *initiator;
  const std::string type = FindKey(keys, "SessionType").value_or("Normal");
  if (type == "Discovery") {
    discovery_ = true;
  } else if (type != "Normal") {
    return Fail(login_status::kSessionTypeNotSupported,
                fmt::format("{}: SessionType={} not supported", initiator_name_, type));
  }
  if (!discovery_) {
    const auto target = FindKey(keys, "TargetName");
    if (!target || target->empty())
      return Fail(login_status::kMissingParameter,
                  fmt::format("{}: no TargetName in a Normal session login", initiator_name_));
    target_name_ = *target;
    if (!config_.target_exists || !config_.target_exists(target_name_))
      return Fail(login_status::kTargetNotFound,
                  fmt::format("{}: no target named {}", initiator_name_, target_name_));
  }
  return Step{};
}

std::optional<Login::Step> Login::Authenticate(const KeyValues& keys, KeyValues& reply,
                                               bool& ready) {
  if (const auto methods = FindKey(keys, "AuthMethod")) {
    std::string chosen;
    size_t pos = 0;
    while (pos <= methods->size() && chosen.empty()) {
      const size_t end = std::min(methods->find(',', pos), methods->size());
      const std::string m = methods->substr(pos, end - pos);
      if ((m == "CHAP" && config_.chap) || (m == "None" && !config_.chap)) chosen = m;
      pos = end + 1;
    }
    if (chosen.empty()) {
      return Fail(login_status::kAuthenticationFailure,
                  fmt::format("{}: AuthMethod={} but this target {}", initiator_name_, *methods,
                              config_.chap ? "requires CHAP" : "has no CHAP secret"));
    }
    reply.emplace_back("AuthMethod", chosen);
    auth_ = chosen == "CHAP" ? Auth::kChap : Auth::kNone;
    if (auth_ == Auth::kChap) chap_.emplace(*config_.chap, config_.mutual_chap);
    if (auth_ == Auth::kChap) {
      ready = false;  // the CHAP exchange follows
      return std::nullopt;
    }
  }
  if (auth_ == Auth::kChap) {
    KeyValues chap_keys;
    for (const auto& kv : keys)
      if (kv.first.rfind("CHAP_", 0) == 0) chap_keys.push_back(kv);
    if (chap_keys.empty()) {
      ready = authenticated_;
      return std::nullopt;
    }
    auto step = chap_->Process(chap_keys);
    if (step.outcome == ChapAuthenticator::Outcome::kFailed)
      return Fail(login_status::kAuthenticationFailure,
                  fmt::format("{}: CHAP failed: {}", initiator_name_, step.why));
    reply.insert(reply.end(), step.reply.begin(), step.reply.end());
    authenticated_ = step.outcome == ChapAuthenticator::Outcome::kAuthenticated;
    ready = authenticated_;
    return std::nullopt;
  }
  if (auth_ == Auth::kUndecided && config_.chap) {
    ready = false;
    return std::nullopt;
  }
  ready = true;
  return std::nullopt;
}

void Login::Negotiate(const KeyValues& keys, NegotiationPhase phase, KeyValues& reply,
                      std::optional<Step>& failure) {
  for (const auto& [key, value] : keys) {
    if (key == "InitiatorName" || key == "TargetName" || key == "SessionType") continue;
    if (phase == NegotiationPhase::kSecurity && IsSecurityKey(key)) continue;
    auto answer = negotiator_.Offer(key, value, phase, discovery_);
    if (answer.fail) {
      failure =
          Fail(login_status::kInitiatorError, fmt::format("{}: {}", initiator_name_, answer.why));
      return;
    }
    if (answer.value) reply.emplace_back(key, *answer.value);
  }
}

Login::Step Login::Process(const Pdu& req) {
  const uint8_t flags = req.flags();
  const bool transit = flags & flag::kTransit;
  const bool cont = flags & flag::kContinue;
  const auto csg = Stage((flags >> kCsgShift) & 3);
  const auto nsg = Stage(flags & 3);
  if (first_) {
    itt_ = req.itt();
    std::copy(req.bhs.begin() + 8, req.bhs.begin() + 14, isid_.begin());
    tsih_ = req.u16(14);
    cid_ = req.u16(20);
    exp_cmdsn_ = req.u32(off::kCmdSn);
    statsn_ = req.u32(off::kExpStatSn);
    stage_ = csg == Stage::kOperational ? Stage::kOperational : Stage::kSecurity;
    if (req.bhs[3] > 0)
      return Fail(login_status::kUnsupportedVersion,
                  fmt::format("login Version-min {} not supported", req.bhs[3]));
  } else {
    itt_ = req.itt();  // the ITT of the latest request is echoed
  }
  if (++requests_ > kMaxLoginRequests)
    return Fail(login_status::kInitiatorError, "login does not converge");
  if (!std::equal(isid_.begin(), isid_.end(), req.bhs.begin() + 8))
    return Fail(login_status::kInitiatorError, "ISID changed during login");
  if (transit && cont)
    return Fail(login_status::kInitiatorError, "login request with both T and C");
  if (csg != stage_)
    return Fail(login_status::kInitiatorError,
                fmt::format("login CSG {} while in stage {}", int(csg), int(stage_)));
  if (transit && (nsg <= csg || (nsg != Stage::kOperational && nsg != Stage::kFullFeature)))
    return Fail(login_status::kInitiatorError,
                fmt::format("login transit from stage {} to {}", int(csg), int(nsg)));

  // Key text continued over several PDUs (C bit): acknowledge with an empty response.
  pending_text_.insert(pending_text_.end(), req.data.begin(), req.data.end());
  if (pending_text_.size() > kMaxLoginText)
    return Fail(login_status::kInitiatorError, "login key text too long");
  if (cont) {
    Step s;
    s.response = MakeResponse(uint8_t(uint8_t(stage_) << kCsgShift), {}, login_status::kSuccess);
    return s;
  }
  const auto keys = ParseTextKeys(pending_text_);
  pending_text_.clear();
  if (!keys) return Fail(login_status::kInitiatorError, "malformed login key text");

  KeyValues reply;
  if (first_) {
    first_ = false;
    Step s = HandleFirstRequest(*keys);
    if (s.kind == Step::Kind::kFail) return s;
    if (!discovery_) {
      reply.emplace_back("TargetPortalGroupTag", std::to_string(config_.portal_group_tag));
    }
  }

  bool ready = true;
  std::optional<Step> failure;
  if (stage_ == Stage::kSecurity) {
    failure = Authenticate(*keys, reply, ready);
    if (!failure && transit && config_.chap && auth_ == Auth::kUndecided)
      return Fail(login_status::kAuthenticationFailure,
                  fmt::format("{}: leaves the security stage without AuthMethod but CHAP is "
                              "required",
                              initiator_name_));
    if (!failure) Negotiate(*keys, NegotiationPhase::kSecurity, reply, failure);
  } else {
    if (config_.chap && !authenticated_)
      return Fail(
          login_status::kAuthenticationFailure,
          fmt::format("{}: skipped the security stage but CHAP is required", initiator_name_));
    for (const auto& kv : *keys) {
      if (IsSecurityKey(kv.first)) reply.emplace_back(kv.first, kIrrelevant);
    }
    Negotiate(*keys, NegotiationPhase::kOperational, reply, failure);
    if (auto decl = negotiator_.TakeOwnDeclaration()) reply.push_back(*decl);
  }
  if (failure) return *failure;

  if (!transit || !ready) {
    Step s;
    s.response = MakeResponse(uint8_t(uint8_t(stage_) << kCsgShift), std::move(reply),
                              login_status::kSuccess);
    return s;
  }
  const uint8_t response_flags =
      uint8_t(flag::kTransit | uint8_t(stage_) << kCsgShift | uint8_t(nsg));
  if (nsg == Stage::kFullFeature) {
    if (auto decl = negotiator_.TakeOwnDeclaration()) reply.push_back(*decl);
    negotiator_.Finish();
    final_flags_ = response_flags;
    final_keys_ = std::move(reply);
    Step s;
    s.kind = Step::Kind::kComplete;
    return s;
  }
  Step s;
  s.response = MakeResponse(response_flags, std::move(reply), login_status::kSuccess);
  stage_ = nsg;
  return s;
}

}  // namespace kelpie::iscsi
