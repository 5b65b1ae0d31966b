// Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text exposition
// format (version 0.0.4). A leaf library: it knows nothing of Kelpie, so every daemon can use it.
//
// Series are created once (at startup, under the registry's mutex) and then updated lock-free: a
// hot path keeps the Counter& / Histogram& it got and does one or two relaxed atomic adds. Values
// that already live elsewhere (bytes on disk, recovery progress) are read at scrape time through
// a callback instead of being copied into a gauge on every change.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kelpie::metrics {

// Label name/value pairs of one series, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Series {
 public:
  virtual ~Series() = default;
  // Appends this series' sample lines for family `name` with the rendered label set `labels`
  // ("" or `k="v",...` without braces).
  virtual void Render(const std::string& name, const std::string& labels,
                      std::string& out) const = 0;
};

// A monotonically increasing count.
class Counter : public Series {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  void Render(const std::string& name, const std::string& labels, std::string& out) const override;

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge : public Series {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }
  void Render(const std::string& name, const std::string& labels, std::string& out) const override;

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted into buckets by upper bound (an observation equal to a bound falls in that
// bucket, as Prometheus' `le` says), with their count and sum.
class Histogram : public Series {
 public:
  // `bounds`: strictly increasing upper bounds, without +Inf (added implicitly).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Cumulative counts per bound, the +Inf bucket last (== count).
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const;
  const std::vector<double>& bounds() const { return bounds_; }
  void Render(const std::string& name, const std::string& labels, std::string& out) const override;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (the last is +Inf)
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 100 µs to 10 s.
std::vector<double> LatencyBuckets();

// A sample computed at scrape time.
struct Sample {
  Labels labels;
  double value;
};

class Registry {
 public:
  // The series of family `name` with `labels`, created on first use. A name keeps the type and
  // help it was first registered with; asking for it as another type throws std::logic_error.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const Labels& labels = {}, std::vector<double> bounds = LatencyBuckets());
  // A gauge family whose samples `collect` returns at every scrape. It runs on the scraping
  // thread with the registry locked: it must be thread-safe against the daemon and must not call
  // back into the registry.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<std::vector<Sample>()> collect);

  // The whole registry in the text exposition format 0.0.4, families in registration order.
  std::string Render() const;

 private:
  struct Family {
    std::string name, help, type;
    std::map<std::string, std::unique_ptr<Series>> series;  // by rendered label set
    std::function<std::vector<Sample>()> collect;           // callback gauges only
  };
  Family& FamilyFor(const std::string& name, const std::string& help, const std::string& type);
  template <typename T, typename... Args>
  T& Get(const std::string& name, const std::string& help, const char* type, const Labels& labels,
         Args&&... args);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// `k="v",...` with the text format's escaping of values (backslash, double quote, newline).
std::string RenderLabels(const Labels& labels);
// A sample value as the text format writes it (integers without a fraction, +Inf, NaN).
std::string FormatValue(double v);

}  // namespace kelpie::metrics
