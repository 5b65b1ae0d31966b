// TargetStats: the series the iSCSI target updates for `kelpie-iscsi --metrics` — sessions and
// connections (set on the I/O thread whenever they change) and, per data direction, SCSI commands,
// data bytes and the time the logical unit took to execute them. Each update is a relaxed atomic.
#pragma once
#include <memory>

#include "metrics/registry.h"

namespace kelpie::iscsi {

struct TargetStats {
  struct Direction {
    metrics::Counter* commands;
    metrics::Counter* bytes;
    metrics::Histogram* latency;
  };
  metrics::Gauge* sessions;
  metrics::Gauge* connections;
  Direction read, write, other;  // other (dir="none"): commands without data, e.g. TEST UNIT READY

  // Registers the series in `registry` (which must outlive the result).
  static std::shared_ptr<TargetStats> Register(metrics::Registry& registry);

  // A finished command: `read`/`write` as the command's data direction.
  void CommandDone(bool read, bool write, uint64_t bytes, double seconds) const {
    const Direction& d = read ? this->read : write ? this->write : other;
    d.commands->Add();
    d.bytes->Add(bytes);
    d.latency->Observe(seconds);
  }
};

}  // namespace kelpie::iscsi
