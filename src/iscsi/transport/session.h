// An iSCSI session (RFC 7143 §4.2.2): its identity (initiator name + ISID, TSIH, target, I_T
// nexus) and the command numbering shared by its connections — the CmdSN window: non-immediate
// PDUs are admitted in CmdSN order, out-of-window and duplicate ones are silently dropped,
// ExpCmdSN advances over contiguous CmdSNs and MaxCmdSN advances as commands complete.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "iscsi/scsi/logical_unit.h"
#include "iscsi/transport/pdu.h"
#include "iscsi/transport/text_keys.h"

namespace kelpie::iscsi {

struct SessionIdentity {
  std::string initiator_name;
  std::string isid;  // 12 lowercase hex digits
  uint16_t tsih = 0;
  std::string target_name;  // empty for discovery sessions
  bool discovery = false;
};

class Session {
 public:
  Session(SessionIdentity id, SessionParams params, std::shared_ptr<scsi::LogicalUnit> lu,
          uint16_t rel_port, uint32_t exp_cmdsn, uint32_t window);

  const SessionIdentity& id() const { return id_; }
  const SessionParams& params() const { return params_; }
  SessionParams& mutable_params() { return params_; }
  const std::shared_ptr<scsi::LogicalUnit>& lu() const { return lu_; }
  const scsi::Nexus& nexus() const { return nexus_; }

  // --- CmdSN ordering ---
  enum class Admission { kNow, kHeld, kDropped };
  // A non-immediate PDU with this CmdSN arrived. kNow: process it (ExpCmdSN advanced); kHeld:
  // kept until the gap before it fills (TakeReady returns it then); kDropped: out of window or
  // a duplicate — ignore it without answer.
  Admission Admit(const Pdu& pdu);
  // Held PDUs that became next in order after earlier ones were admitted.
  std::optional<Pdu> TakeReady();
  // A counted command (non-immediate SCSI command) started / finished: finished ones open the
  // window (MaxCmdSN advances).
  void CommandStarted() { ++in_flight_; }
  void CommandFinished() {
    if (in_flight_) --in_flight_;
  }
  uint32_t exp_cmdsn() const { return exp_cmdsn_; }
  uint32_t max_cmdsn() const;
  // Whether CmdSN n is inside the window but not received yet (ABORT TASK of a task still on its
  // way): then it is recorded, and the command is consumed without execution when it arrives.
  bool RecordAbortOfUnreceived(uint32_t cmdsn);
  bool TakeAbortedBeforeArrival(uint32_t cmdsn);

  // The connection of the session (MaxConnections=1), closed on reinstatement or target reset.
  void set_closer(std::function<void(const std::string&)> closer) { closer_ = std::move(closer); }
  void Close(const std::string& why) {
    if (closer_) closer_(why);
  }
  // Aborts every task of the session (LUN RESET from another session): their results are dropped.
  void set_task_aborter(std::function<void()> aborter) { aborter_ = std::move(aborter); }
  void AbortAllTasks() {
    if (aborter_) aborter_();
  }
  // Reinstatement handed the nexus to a new session: the old one must not report NexusGone.
  bool nexus_handed_over = false;

 private:
  bool InWindow(uint32_t cmdsn) const;

  SessionIdentity id_;
  SessionParams params_;
  std::shared_ptr<scsi::LogicalUnit> lu_;
  scsi::Nexus nexus_;
  uint32_t exp_cmdsn_;
  uint32_t window_;
  uint32_t in_flight_ = 0;
  std::map<uint32_t, Pdu> held_;  // by CmdSN, all within the window
  std::set<uint32_t> aborted_before_arrival_;
  std::function<void(const std::string&)> closer_;
  std::function<void()> aborter_;
};

}  // namespace kelpie::iscsi
