#include "iscsi/transport/target_stats.h"

namespace kelpie::iscsi {

std::shared_ptr<TargetStats> TargetStats::Register(metrics::Registry& r) {
  auto s = std::make_shared<TargetStats>();
  s->sessions = &r.GetGauge("kelpie_iscsi_sessions", "iSCSI sessions (discovery included)");
  s->connections = &r.GetGauge("kelpie_iscsi_connections", "Open iSCSI connections");
  auto direction = [&r](const char* dir) {
    const metrics::Labels l = {{"dir", dir}};
    return Direction{
        &r.GetCounter("kelpie_iscsi_scsi_commands_total", "SCSI commands executed", l),
        &r.GetCounter("kelpie_iscsi_scsi_bytes_total", "SCSI data bytes read or written", l),
        &r.GetHistogram("kelpie_iscsi_scsi_command_duration_seconds",
                        "Time the logical unit took to execute a SCSI command", l)};
  };
  s->read = direction("read");
  s->write = direction("write");
  s->other = direction("none");
  return s;
}

}  // namespace kelpie::iscsi
