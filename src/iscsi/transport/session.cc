#include "iscsi/transport/session.h"

namespace kelpie::iscsi {

Session::Session(SessionIdentity id, SessionParams params, std::shared_ptr<scsi::LogicalUnit> lu,
                 uint16_t rel_port, uint32_t exp_cmdsn, uint32_t window)
    : id_(std::move(id)),
      params_(std::move(params)),
      lu_(std::move(lu)),
      exp_cmdsn_(exp_cmdsn),
      window_(window) {
  nexus_.initiator = id_.initiator_name;
  nexus_.isid = id_.isid;
  nexus_.rel_port = rel_port;
}

uint32_t Session::max_cmdsn() const {
  // ExpCmdSN − in_flight only grows, so MaxCmdSN never decreases.
  return exp_cmdsn_ - in_flight_ + window_ - 1;
}

bool Session::InWindow(uint32_t cmdsn) const {
  return SnLessEq(exp_cmdsn_, cmdsn) && SnLessEq(cmdsn, max_cmdsn());
}

Session::Admission Session::Admit(const Pdu& pdu) {
  const uint32_t cmdsn = pdu.u32(off::kCmdSn);
  if (!InWindow(cmdsn) || held_.count(cmdsn)) return Admission::kDropped;
  if (cmdsn != exp_cmdsn_) {
    held_.emplace(cmdsn, pdu);
    return Admission::kHeld;
  }
  ++exp_cmdsn_;
  return Admission::kNow;
}

std::optional<Pdu> Session::TakeReady() {
  auto it = held_.find(exp_cmdsn_);
  if (it == held_.end()) return std::nullopt;
  Pdu p = std::move(it->second);
  held_.erase(it);
  ++exp_cmdsn_;
  return p;
}

bool Session::RecordAbortOfUnreceived(uint32_t cmdsn) {
  if (!InWindow(cmdsn) || held_.count(cmdsn)) return false;
  aborted_before_arrival_.insert(cmdsn);
  return true;
}

bool Session::TakeAbortedBeforeArrival(uint32_t cmdsn) {
  return aborted_before_arrival_.erase(cmdsn) > 0;
}

}  // namespace kelpie::iscsi
