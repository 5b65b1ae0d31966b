// iSCSI text keys (RFC 7143 §6, §13): parsing and serializing key=value\0 data, and the
// negotiation table of every login/text key with its type, range, result function and scope.
// The Negotiator answers one offered key at a time (value, NotUnderstood, Irrelevant, Reject) and
// keeps the negotiated session and connection parameters.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kelpie::iscsi {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kMaxKeyNameLength = 63;
inline constexpr size_t kMaxKeyValueLength = 8192;

// Parses NUL-terminated key=value pairs (a missing final NUL and zero padding are tolerated).
// nullopt when a pair has no '=', an empty or too long name, or a too long value.
std::optional<KeyValues> ParseTextKeys(std::span<const uint8_t> data);
std::vector<uint8_t> SerializeTextKeys(const KeyValues& kv);
// Value of the first pair named key, if any.
std::optional<std::string> FindKey(const KeyValues& kv, const std::string& key);

// Answer values that are not values.
inline constexpr const char* kNotUnderstood = "NotUnderstood";
inline constexpr const char* kIrrelevant = "Irrelevant";
inline constexpr const char* kReject = "Reject";

// What this target supports (the target side of every negotiation).
struct TargetLimits {
  uint32_t max_recv_data_segment_length = 262144;  // declared to the initiator
  uint32_t max_burst_length = 1048576;
  uint32_t first_burst_length = 262144;
  uint32_t max_outstanding_r2t = 16;
  uint32_t max_connections = 1;
  uint32_t default_time2wait = 2;
  uint32_t default_time2retain = 20;
  uint32_t error_recovery_level = 0;
  bool initial_r2t = false;    // our side of the OR: No lets the initiator choose
  bool immediate_data = true;  // our side of the AND
  bool crc32c_digests = true;  // HeaderDigest/DataDigest CRC32C accepted when offered first
};

// The outcome of negotiation (RFC defaults until a key is negotiated).
struct SessionParams {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t max_connections = 1;
  bool initial_r2t = true;
  bool immediate_data = true;
  uint32_t initiator_mrdsl = 8192;  // what the initiator can receive: our Data-In/Text limit
  uint32_t target_mrdsl = 8192;     // what we declared we receive
  uint32_t max_burst_length = 262144;
  uint32_t first_burst_length = 65536;
  uint32_t default_time2wait = 2;
  uint32_t default_time2retain = 20;
  uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  uint32_t error_recovery_level = 0;
  std::string initiator_alias;
};

// Where a key is being negotiated.
enum class NegotiationPhase { kSecurity, kOperational, kFullFeature };

class Negotiator {
 public:
  explicit Negotiator(TargetLimits limits);

  struct Answer {
    std::optional<std::string> value;  // what to answer (nullopt: declarative, no answer)
    bool fail = false;                 // protocol violation: fail the login (status 0x0200)
    std::string why;                   // for fail, or for Reject answers (logged)
  };
  // The initiator offered key=value. InitiatorName/TargetName/SessionType/AuthMethod/CHAP_* are
  // the login's business and are not handled here (they return Irrelevant).
  Answer Offer(const std::string& key, const std::string& value, NegotiationPhase phase,
               bool discovery);
  // Fixes derived constraints once the stage is done (FirstBurstLength ≤ MaxBurstLength) and
  // records our own MaxRecvDataSegmentLength as declared.
  void Finish();
  // Our MaxRecvDataSegmentLength declaration, once per login (empty after the first call).
  std::optional<std::pair<std::string, std::string>> TakeOwnDeclaration();

  const SessionParams& params() const { return params_; }
  const TargetLimits& limits() const { return limits_; }

 private:
  TargetLimits limits_;
  SessionParams params_;
  std::map<std::string, std::string> offered_;  // key → first offered value (re-offer check)
  bool declared_ = false;
};

// Numeric key values: decimal or 0x-hex, at most 64 bits.
std::optional<uint64_t> ParseNumber(const std::string& s);

}  // namespace kelpie::iscsi
