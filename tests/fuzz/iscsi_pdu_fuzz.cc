// Fuzz target: an iSCSI initiator's byte stream as the target reads it. The first input byte
// picks the negotiated framing (digests, MaxRecvDataSegmentLength); the rest is split into PDUs
// with ParsePduFrame (BHS, AHS, digests, data segment lengths — the framing rules without a
// socket, since clang 14 cannot compile the transport's coroutines under these sanitizers). Each
// PDU then goes where the connection sends it: Login Requests to a Login until it completes,
// then SCSI Commands to ScsiTask (CDB, extended-CDB AHS, immediate data) and Text Requests to
// the key parser.
#include <cstdlib>

#include "iscsi/transport/login.h"
#include "iscsi/transport/pdu_frame.h"
#include "iscsi/transport/scsi_task.h"
#include "iscsi/transport/text_keys.h"

using namespace kelpie::iscsi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  PduFraming framing;
  framing.header_digest = data[0] & 1;
  framing.data_digest = data[0] & 2;
  framing.max_recv_data = (data[0] & 4) ? 262144 : 8192;
  std::span<const uint8_t> in(data + 1, size - 1);
  LoginConfig config;
  config.target_exists = [](const std::string&) { return true; };
  Login login(config);
  bool logged_in = false;
  for (;;) {
    Pdu pdu;
    const PduFrameResult r = ParsePduFrame(in, framing, pdu);
    if (r.kind != PduFrameResult::Kind::kPdu) return 0;
    if (r.consumed < kBhsLength || r.consumed > in.size()) std::abort();
    if (pdu.data.size() != pdu.data_length() || pdu.ahs.size() != pdu.ahs_length()) std::abort();
    in = in.subspan(r.consumed);
    if (!r.data_digest_ok) continue;
    if (!logged_in) {
      if (pdu.opcode() != op::kLoginRequest) return 0;
      const Login::Step step = login.Process(pdu);
      if (step.kind == Login::Step::Kind::kFail) return 0;
      logged_in = step.kind == Login::Step::Kind::kComplete;
      continue;
    }
    switch (pdu.opcode()) {
      case op::kScsiCommand: {
        std::string error;
        ScsiTask task(pdu, login.params(), &error);
        if (error.empty() && task.cdb.size() < 16) std::abort();
        break;
      }
      case op::kTextRequest:
        (void)ParseTextKeys(pdu.data);
        break;
      default:
        break;
    }
  }
}
