// SheepMetrics: what `sheep --metrics ADDR:PORT` serves at /metrics. Every request through the
// op table is counted once, in Sheep::Dispatch (requests, failures, bytes and latency by the op's
// table name); store, recovery and lock figures are read from the daemon at scrape time.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "metrics/http_server.h"
#include "metrics/registry.h"

namespace kelpie::sheep {

class Sheep;

class SheepMetrics {
 public:
  // Registers every series and starts listening on `listen` (throws std::runtime_error if it
  // cannot).
  SheepMetrics(Sheep& sheep, const std::string& listen);

  // One request served by the op table. Lock-free: a few relaxed atomic adds.
  void Observe(uint8_t opcode, uint64_t bytes_in, uint64_t bytes_out, bool failed, double seconds) {
    const OpSeries* s = ops_[opcode].get();
    if (s == nullptr) return;
    s->requests->Add();
    if (failed) s->failures->Add();
    s->bytes_in->Add(bytes_in);
    s->bytes_out->Add(bytes_out);
    s->latency->Observe(seconds);
  }

  uint16_t port() const { return server_->port(); }

 private:
  struct OpSeries {
    metrics::Counter* requests;
    metrics::Counter* failures;
    metrics::Counter* bytes_in;
    metrics::Counter* bytes_out;
    metrics::Histogram* latency;
  };
  void AddDaemonGauges(Sheep& sheep);

  metrics::Registry registry_;
  std::array<std::unique_ptr<OpSeries>, 256> ops_;  // by opcode; null for unknown opcodes
  std::unique_ptr<metrics::MetricsServer> server_;
};

}  // namespace kelpie::sheep
