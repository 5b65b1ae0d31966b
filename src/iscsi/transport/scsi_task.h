// One SCSI task of a session (RFC 7143 §4.2.2, §11.3–11.8): the command as received, the write
// data it gathers (immediate data, unsolicited Data-Out up to FirstBurstLength, R2T-solicited
// bursts) with DataSN/offset/TTT validation, and the PDUs that return its result (Data-In
// sequences with status collapsed into the last one, or a SCSI Response with sense and residuals).
// No I/O here: the connection feeds PDUs in and sends the PDUs that come out.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "iscsi/scsi/scsi_types.h"
#include "iscsi/transport/pdu.h"
#include "iscsi/transport/text_keys.h"

namespace kelpie::iscsi {

// The LUN number of a BHS LUN field (peripheral or flat addressing; others map to a large
// number that no LU has).
uint64_t DecodeLun(uint64_t lun_field);

// Residual flags and count of a response: O when EDTL is smaller than what the command needed,
// U when larger.
struct Residual {
  uint8_t flags = 0;  // flag::kResidOverflow / flag::kResidUnderflow
  uint32_t count = 0;
};
Residual ComputeResidual(uint32_t edtl, std::optional<uint32_t> scsi_length);

struct R2tState {
  uint32_t offset = 0, length = 0;
  uint32_t next_offset = 0;  // next expected BufferOffset
  uint32_t next_data_sn = 0;
};

class ScsiTask {
 public:
  // Builds the task from a SCSI Command PDU; *error says why the PDU is malformed (Reject 0x09).
  ScsiTask(const Pdu& cmd, const SessionParams& params, std::string* error);

  uint32_t itt = 0, cmdsn = 0;
  bool immediate = false;
  uint64_t lun_field = 0;
  uint64_t lun = 0;
  std::vector<uint8_t> cdb;
  uint32_t edtl = 0;
  bool read = false, write = false;
  bool executing = false;  // handed to the LU
  bool aborted = false;    // its result is never sent
  uint64_t budget = 0;     // bytes of the connection's pending-data budget it holds
  bool waiting_for_budget = false;

  // --- write data ---
  // Result of feeding one Data-Out.
  enum class DataVerdict { kAccepted, kComplete, kError };
  DataVerdict AcceptDataOut(const Pdu& data_out, std::string* error);
  // Whether every byte up to EDTL has arrived (and no unsolicited data is still due).
  bool DataComplete() const { return !write || (!unsolicited_open_ && received_ >= edtl); }
  bool WantsR2T() const;
  // The next R2T (TTT chosen by the caller) of at most max_burst bytes; nullopt if none is due.
  std::optional<Pdu> NextR2T(uint32_t ttt);
  uint32_t PendingR2TLength() const;  // length the next R2T would have
  std::vector<uint8_t> TakeDataOut();
  uint32_t received() const { return received_; }

  // --- result ---
  // Data-In PDUs and/or SCSI Response for the LU's result. StatSN/ExpCmdSN/MaxCmdSN are left
  // for the connection to stamp; the last PDU is the one carrying status.
  std::vector<Pdu> BuildResponse(const scsi::ScsiResult& result) const;
  // A SCSI Response with CHECK CONDITION (for failures the transport decides).
  std::vector<Pdu> BuildCheckCondition(uint8_t key, uint8_t asc, uint8_t ascq) const;

 private:
  Pdu MakeScsiResponse(const scsi::ScsiResult& result, uint32_t data_in_pdus) const;

  SessionParams params_;
  std::vector<uint8_t> data_out_;
  uint32_t received_ = 0;
  bool unsolicited_open_ = false;  // F=0 on the command: unsolicited Data-Out follows
  uint32_t unsolicited_limit_ = 0;
  uint32_t unsolicited_next_offset_ = 0;
  uint32_t unsolicited_data_sn_ = 0;
  uint32_t next_r2t_offset_ = 0;
  uint32_t r2t_sn_ = 0;
  std::map<uint32_t, R2tState> r2ts_;  // outstanding, by TTT
};

}  // namespace kelpie::iscsi
