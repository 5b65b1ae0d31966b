#include "sheep/sheep_metrics.h"

#include <nlohmann/json.hpp>

#include "proto/constants.h"
#include "sheep/ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using metrics::Labels;
using metrics::Sample;

SheepMetrics::SheepMetrics(Sheep& sheep, const std::string& listen) {
  for (const OpInfo& op : AllOps()) {
    const Labels l = {{"op", op.name}};
    auto s = std::make_unique<OpSeries>();
    s->requests = &registry_.GetCounter("kelpie_sheep_requests_total",
                                        "Requests served, by op (client, admin and peer)", l);
    s->failures = &registry_.GetCounter("kelpie_sheep_request_failures_total",
                                        "Requests answered with a result other than SUCCESS", l);
    s->bytes_in = &registry_.GetCounter("kelpie_sheep_request_bytes_total",
                                        "Data bytes received with requests, by op", l);
    s->bytes_out = &registry_.GetCounter("kelpie_sheep_reply_bytes_total",
                                         "Data bytes sent with replies, by op", l);
    s->latency = &registry_.GetHistogram("kelpie_sheep_request_duration_seconds",
                                         "Time from dispatch to reply, by op", l);
    ops_[op.opcode] = std::move(s);
  }
  AddDaemonGauges(sheep);
  server_ = std::make_unique<metrics::MetricsServer>(listen, [this] { return registry_.Render(); });
}

void SheepMetrics::AddDaemonGauges(Sheep& sheep) {
  auto one = [](double v) { return std::vector<Sample>{{{}, v}}; };
  registry_.AddCallbackGauge("kelpie_sheep_objects", "Objects held in this sheep's store",
                             [&sheep, one] { return one(double(sheep.store().List().size())); });
  registry_.AddCallbackGauge("kelpie_sheep_disk_used_bytes", "Bytes used by the object store",
                             [&sheep, one] { return one(double(sheep.store().UsedBytes())); });
  registry_.AddCallbackGauge("kelpie_sheep_disk_capacity_bytes",
                             "Capacity of the store's file system in bytes",
                             [&sheep, one] { return one(double(sheep.store().CapacityBytes())); });
  registry_.AddCallbackGauge(
      "kelpie_sheep_writeback_dirty_objects",
      "Objects with write-back writes not yet made durable by a flush (FLUSH_VDI)",
      [&sheep, one] { return one(double(sheep.store().DirtyCount())); });
  registry_.AddCallbackGauge("kelpie_sheep_epoch", "Current cluster epoch",
                             [&sheep, one] { return one(double(sheep.view().epoch)); });
  // Recovery progress: one field of Recovery::Status per gauge.
  struct RecoveryGauge {
    const char* name;
    const char* field;
    const char* help;
  };
  constexpr RecoveryGauge kRecovery[] = {
      {"kelpie_sheep_recovering", "recovering",
       "1 while this sheep recovers objects after a membership change"},
      {"kelpie_sheep_recovery_objects_done", "done", "Objects recovered in the current recovery"},
      {"kelpie_sheep_recovery_objects_total", "total",
       "Objects to recover in the current recovery"}};
  for (const RecoveryGauge& g : kRecovery) {
    registry_.AddCallbackGauge(g.name, g.help, [&sheep, one, field = g.field] {
      const nlohmann::json v = sheep.recovery().Status().at(field);
      return one(v.is_boolean() ? double(v.get<bool>()) : v.get<double>());
    });
  }
  registry_.AddCallbackGauge(
      "kelpie_sheep_lock_participants",
      "VDI lock participants by state (shared locks: modified/shared/invalidated; normal: holder)",
      [&sheep] {
        std::map<std::string, double> by_state = {
            {"modified", 0}, {"shared", 0}, {"invalidated", 0}, {"holder", 0}};
        sheep.WithState([&](const ClusterState& st) {
          for (const auto& [vid, lock] : st.locks.locks()) {
            for (const auto& [who, state] : lock.participants) {
              by_state[lock.type == proto::kLockShared ? ParticipantStateName(state) : "holder"] +=
                  1;
            }
          }
        });
        std::vector<Sample> out;
        for (const auto& [state, n] : by_state) out.push_back({{{"state", state}}, n});
        return out;
      });
}

}  // namespace kelpie::sheep
