// Fuzz target: login and text key=value data (text_keys, login). The input is a sequence of Login
// Request PDUs (BHS fields and key text chosen by the fuzzer) run through one Login, as a
// connection does before full feature phase; each PDU's key text is also parsed and negotiated
// on its own, and what parses must serialize and parse back to the same pairs.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>

#include "iscsi/transport/login.h"
#include "iscsi/transport/text_keys.h"

using namespace kelpie::iscsi;

namespace {

void NegotiateAlone(const std::vector<uint8_t>& text, uint8_t phase_pick) {
  const auto keys = ParseTextKeys(text);
  if (!keys) return;
  const auto again = ParseTextKeys(SerializeTextKeys(*keys));
  if (!again || *again != *keys) std::abort();
  Negotiator n{TargetLimits{}};
  const auto phase = static_cast<NegotiationPhase>(phase_pick % 3);
  for (const auto& [k, v] : *keys) {
    (void)n.Offer(k, v, phase, phase_pick & 4);
    (void)ParseNumber(v);
  }
  n.Finish();
  (void)n.TakeOwnDeclaration();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  LoginConfig config;
  const uint8_t setup = in.ConsumeIntegral<uint8_t>();
  if (setup & 1) config.chap = ChapCredentials{"user", "secret-of-twelve"};
  if (setup & 2) config.mutual_chap = ChapCredentials{"target", "another-secret"};
  config.target_exists = [](const std::string& name) { return name.rfind("iqn.", 0) == 0; };
  Login login(config);
  for (int i = 0; i < 8 && in.remaining_bytes() > 0; ++i) {
    Pdu pdu;
    const auto bhs = in.ConsumeBytes<uint8_t>(kBhsLength);
    std::copy(bhs.begin(), bhs.end(), pdu.bhs.begin());
    pdu.bhs[0] = op::kLoginRequest | 0x40;
    const auto text = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 4096));
    NegotiateAlone(text, setup >> 2);
    pdu.set_data(text);
    const Login::Step step = login.Process(pdu);
    if (step.kind == Login::Step::Kind::kFail) break;
    if (step.kind == Login::Step::Kind::kComplete) {
      (void)login.FinalResponse(1);
      break;
    }
  }
  return 0;
}
