// LogicalUnit: one SCSI direct-access block device (SBC-3) over a BlockBackend, as the transport
// sees it. Commands run on the LU's worker threads (backend calls block), so many commands of many
// sessions are in flight at once. State that must bind every target process of the LU (PR,
// SPC-2 RESERVE, unit attentions, port groups) lives in the backend's shared state.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "iscsi/scsi/block_backend.h"
#include "iscsi/scsi/scsi_types.h"

namespace kelpie::scsi {

struct LuConfig {
  std::string vendor = "KELPIE";  // INQUIRY vendor (8 chars, padded)
  std::string product = "VDISK";  // INQUIRY product (16 chars, padded)
  std::string revision = "0001";
  uint16_t rel_port = 1;    // this process's relative target port id
  uint16_t tpg = 1;         // this process's target port group id
  std::string target_name;  // iSCSI target name (VPD 0x83 SCSI name designator)
  uint32_t block_size = 512;
  int workers = 8;  // threads running backend calls
};

class LogicalUnit {
 public:
  LogicalUnit(std::unique_ptr<BlockBackend> backend, LuConfig cfg);
  ~LogicalUnit();
  LogicalUnit(const LogicalUnit&) = delete;
  LogicalUnit& operator=(const LogicalUnit&) = delete;

  // Runs one command; done is called exactly once, from a worker thread or synchronously.
  void Execute(ScsiCommand cmd, ScsiDone done);
  // An I_T nexus logged in (queues power-on UA 29/00 for it) / ended by logout, reinstatement or
  // connection loss (releases its SPC-2 reservation; PR registrations stay). Both may block.
  void NexusLogin(const Nexus& n);
  void NexusGone(const Nexus& n);
  // LUN RESET and target resets: release SPC-2 reservation, queue UA 29/03 for every nexus of the
  // LU in every process, before returning. Returns the TMF response code (0 complete, 5 not
  // supported). Blocks.
  uint8_t Reset(LuReset what, const Nexus& requester);

  BlockBackend& backend();
  const LuConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kelpie::scsi
