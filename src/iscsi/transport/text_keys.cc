#include "iscsi/transport/text_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace kelpie::iscsi {

std::optional<KeyValues> ParseTextKeys(std::span<const uint8_t> data) {
  KeyValues kv;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = pos;
    while (end < data.size() && data[end] != 0) ++end;
    if (end == pos) {  // padding or an empty entry
      ++pos;
      continue;
    }
    const std::string pair(reinterpret_cast<const char*>(data.data()) + pos, end - pos);
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || eq > kMaxKeyNameLength ||
        pair.size() - eq - 1 > kMaxKeyValueLength) {
      return std::nullopt;
    }
    kv.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    pos = end + 1;
  }
  return kv;
}

std::vector<uint8_t> SerializeTextKeys(const KeyValues& kv) {
  std::vector<uint8_t> out;
  for (const auto& [k, v] : kv) {
    out.insert(out.end(), k.begin(), k.end());
    out.push_back('=');
    out.insert(out.end(), v.begin(), v.end());
    out.push_back(0);
  }
  return out;
}

std::optional<std::string> FindKey(const KeyValues& kv, const std::string& key) {
  for (const auto& [k, v] : kv)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<uint64_t> ParseNumber(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string digits = hex ? s.substr(2) : s;
  if (digits.empty()) return std::nullopt;
  for (char c : digits)
    if (hex ? !std::isxdigit(static_cast<unsigned char>(c))
            : !std::isdigit(static_cast<unsigned char>(c)))
      return std::nullopt;
  return std::strtoull(digits.c_str(), nullptr, hex ? 16 : 10);
}

namespace {

enum class KeyKind {
  kNumeric,      // result function min/max over a range
  kBoolean,      // AND / OR
  kDigest,       // list: None, CRC32C
  kDeclaration,  // declarative: stored, not answered
  kMarker,       // obsolete IFMarker/OFMarker: AND with No
  kIrrelevant,   // obsolete *MarkInt, meaningless without markers
  kLoginOnly,    // handled by the login (names, session type, security keys)
  kTargetOnly,   // keys only a target may send
};
enum class Result { kNone, kMin, kMax, kAnd, kOr };
enum class Scope { kLeadingOnly, kInitialOnly, kAll };

struct KeyDef {
  const char* name;
  KeyKind kind;
  Result result = Result::kNone;
  Scope scope = Scope::kLeadingOnly;
  uint64_t min = 0, max = 0;
  bool irrelevant_in_discovery = false;
  uint32_t SessionParams::*num = nullptr;     // numeric result
  uint32_t TargetLimits::*own_num = nullptr;  // our numeric limit
  bool SessionParams::*flag = nullptr;        // boolean / digest result
  bool TargetLimits::*own_flag = nullptr;     // our boolean
};

constexpr uint64_t kMaxLen24 = (1u << 24) - 1;

const KeyDef kKeys[] = {
    {"HeaderDigest", KeyKind::kDigest, Result::kNone, Scope::kInitialOnly, 0, 0, false, nullptr,
     nullptr, &SessionParams::header_digest, &TargetLimits::crc32c_digests},
    {"DataDigest", KeyKind::kDigest, Result::kNone, Scope::kInitialOnly, 0, 0, false, nullptr,
     nullptr, &SessionParams::data_digest, &TargetLimits::crc32c_digests},
    {"MaxConnections", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 1, 65535, true,
     &SessionParams::max_connections, &TargetLimits::max_connections},
    {"InitialR2T", KeyKind::kBoolean, Result::kOr, Scope::kLeadingOnly, 0, 0, true, nullptr,
     nullptr, &SessionParams::initial_r2t, &TargetLimits::initial_r2t},
    {"ImmediateData", KeyKind::kBoolean, Result::kAnd, Scope::kLeadingOnly, 0, 0, true, nullptr,
     nullptr, &SessionParams::immediate_data, &TargetLimits::immediate_data},
    {"MaxRecvDataSegmentLength", KeyKind::kDeclaration, Result::kNone, Scope::kAll, 512, kMaxLen24,
     false, &SessionParams::initiator_mrdsl},
    {"MaxBurstLength", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 512, kMaxLen24, true,
     &SessionParams::max_burst_length, &TargetLimits::max_burst_length},
    {"FirstBurstLength", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 512, kMaxLen24, true,
     &SessionParams::first_burst_length, &TargetLimits::first_burst_length},
    {"DefaultTime2Wait", KeyKind::kNumeric, Result::kMax, Scope::kLeadingOnly, 0, 3600, false,
     &SessionParams::default_time2wait, &TargetLimits::default_time2wait},
    {"DefaultTime2Retain", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 0, 3600, false,
     &SessionParams::default_time2retain, &TargetLimits::default_time2retain},
    {"MaxOutstandingR2T", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 1, 65535, true,
     &SessionParams::max_outstanding_r2t, &TargetLimits::max_outstanding_r2t},
    {"DataPDUInOrder", KeyKind::kBoolean, Result::kOr, Scope::kLeadingOnly, 0, 0, true, nullptr,
     nullptr, &SessionParams::data_pdu_in_order, nullptr},
    {"DataSequenceInOrder", KeyKind::kBoolean, Result::kOr, Scope::kLeadingOnly, 0, 0, true,
     nullptr, nullptr, &SessionParams::data_sequence_in_order, nullptr},
    {"ErrorRecoveryLevel", KeyKind::kNumeric, Result::kMin, Scope::kLeadingOnly, 0, 2, false,
     &SessionParams::error_recovery_level, &TargetLimits::error_recovery_level},
    {"IFMarker", KeyKind::kMarker, Result::kAnd, Scope::kInitialOnly},
    {"OFMarker", KeyKind::kMarker, Result::kAnd, Scope::kInitialOnly},
    {"IFMarkInt", KeyKind::kIrrelevant, Result::kNone, Scope::kInitialOnly},
    {"OFMarkInt", KeyKind::kIrrelevant, Result::kNone, Scope::kInitialOnly},
    {"InitiatorAlias", KeyKind::kDeclaration, Result::kNone, Scope::kAll},
    {"InitiatorName", KeyKind::kLoginOnly, Result::kNone, Scope::kInitialOnly},
    {"TargetName", KeyKind::kLoginOnly, Result::kNone, Scope::kInitialOnly},
    {"SessionType", KeyKind::kLoginOnly, Result::kNone, Scope::kLeadingOnly},
    {"AuthMethod", KeyKind::kLoginOnly, Result::kNone, Scope::kInitialOnly},
    {"TargetAlias", KeyKind::kTargetOnly, Result::kNone, Scope::kAll},
    {"TargetAddress", KeyKind::kTargetOnly, Result::kNone, Scope::kAll},
    {"TargetPortalGroupTag", KeyKind::kTargetOnly, Result::kNone, Scope::kInitialOnly},
};

const KeyDef* FindDef(const std::string& key) {
  for (const KeyDef& d : kKeys)
    if (key == d.name) return &d;
  return nullptr;
}

std::optional<bool> ParseBool(const std::string& v) {
  if (v == "Yes") return true;
  if (v == "No") return false;
  return std::nullopt;
}

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    const size_t end = std::min(v.find(',', pos), v.size());
    out.push_back(v.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

Negotiator::Negotiator(TargetLimits limits) : limits_(limits) {}

Negotiator::Answer Negotiator::Offer(const std::string& key, const std::string& value,
                                     NegotiationPhase phase, bool discovery) {
  Answer a;
  const KeyDef* def = FindDef(key);
  const bool security_key = key.rfind("CHAP_", 0) == 0;
  if (!def) {
    a.value = security_key ? kIrrelevant : kNotUnderstood;
    return a;
  }
  if (def->kind == KeyKind::kLoginOnly) {
    a.value = kIrrelevant;
    return a;
  }
  if (def->kind == KeyKind::kTargetOnly) {
    a.value = kReject;
    a.why = key + " is sent by targets only";
    return a;
  }
  if (phase == NegotiationPhase::kFullFeature && def->scope != Scope::kAll) {
    a.value = kReject;
    a.why = key + " cannot be renegotiated in full feature phase";
    return a;
  }
  // Re-offering a negotiated key with a different value is a protocol error.
  if (def->kind != KeyKind::kDeclaration) {
    auto [it, fresh] = offered_.emplace(key, value);
    if (!fresh && it->second != value) {
      a.fail = true;
      a.why = fmt::format("{} re-offered as '{}' after '{}'", key, value, it->second);
      return a;
    }
  }
  if (discovery && def->irrelevant_in_discovery) {
    a.value = kIrrelevant;
    return a;
  }
  switch (def->kind) {
    case KeyKind::kNumeric: {
      const auto n = ParseNumber(value);
      if (!n || *n < def->min || *n > def->max) {
        a.value = kReject;
        a.why = fmt::format("{}={} is not a number in {}..{}", key, value, def->min, def->max);
        return a;
      }
      const uint32_t own = limits_.*(def->own_num);
      const uint32_t result =
          def->result == Result::kMax ? std::max(uint32_t(*n), own) : std::min(uint32_t(*n), own);
      params_.*(def->num) = result;
      a.value = std::to_string(result);
      return a;
    }
    case KeyKind::kBoolean: {
      const auto b = ParseBool(value);
      if (!b) {
        a.value = kReject;
        a.why = fmt::format("{}={} is not Yes or No", key, value);
        return a;
      }
      // Keys without an own value of ours: we accept either (DataPDUInOrder etc.: OR with No).
      const bool own = def->own_flag ? limits_.*(def->own_flag) : false;
      const bool result = def->result == Result::kAnd ? (*b && own) : (*b || own);
      params_.*(def->flag) = result;
      a.value = result ? "Yes" : "No";
      return a;
    }
    case KeyKind::kDigest: {
      for (const std::string& choice : SplitList(value)) {
        if (choice == "None" || (choice == "CRC32C" && limits_.*(def->own_flag))) {
          params_.*(def->flag) = choice == "CRC32C";
          a.value = choice;
          return a;
        }
      }
      a.value = kReject;
      a.why = fmt::format("{}={} offers nothing supported", key, value);
      return a;
    }
    case KeyKind::kDeclaration: {
      if (def->num) {
        const auto n = ParseNumber(value);
        if (!n || *n < def->min || *n > def->max) {
          a.value = kReject;
          a.why = fmt::format("{}={} is not a number in {}..{}", key, value, def->min, def->max);
          return a;
        }
        params_.*(def->num) = uint32_t(*n);
      } else if (key == "InitiatorAlias") {
        params_.initiator_alias = value;
      }
      // MaxRecvDataSegmentLength is answered by our own declaration.
      if (key == "MaxRecvDataSegmentLength" && phase == NegotiationPhase::kFullFeature) {
        a.value = std::to_string(limits_.max_recv_data_segment_length);
      }
      return a;
    }
    case KeyKind::kMarker: {
      const auto b = ParseBool(value);
      a.value = b ? "No" : kReject;
      if (!b) a.why = fmt::format("{}={} is not Yes or No", key, value);
      return a;
    }
    case KeyKind::kIrrelevant:
      a.value = kIrrelevant;
      return a;
    default:
      a.value = kNotUnderstood;
      return a;
  }
}

void Negotiator::Finish() {
  params_.first_burst_length = std::min(params_.first_burst_length, params_.max_burst_length);
}

std::optional<std::pair<std::string, std::string>> Negotiator::TakeOwnDeclaration() {
  if (declared_) return std::nullopt;
  declared_ = true;
  params_.target_mrdsl = limits_.max_recv_data_segment_length;
  return std::make_pair(std::string("MaxRecvDataSegmentLength"),
                        std::to_string(limits_.max_recv_data_segment_length));
}

}  // namespace kelpie::iscsi
