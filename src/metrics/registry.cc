#include "metrics/registry.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace kelpie::metrics {

namespace {

void AppendSample(std::string& out, const std::string& name, const std::string& labels,
                  const std::string& value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

// HELP text escaping: backslash and newline.
std::string EscapeHelp(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(int64_t(v));
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back as v
  return std::string(buf, r.ptr);
}

std::string RenderLabels(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

void Counter::Render(const std::string& name, const std::string& labels, std::string& out) const {
  AppendSample(out, name, labels, std::to_string(value()));
}

void Gauge::Render(const std::string& name, const std::string& labels, std::string& out) const {
  AppendSample(out, name, labels, std::to_string(value()));
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    if (!(bounds_[i] < bounds_[i + 1]))
      throw std::logic_error("histogram bounds must increase strictly");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double Histogram::sum() const { return sum_.load(std::memory_order_relaxed); }

void Histogram::Render(const std::string& name, const std::string& labels, std::string& out) const {
  const std::vector<uint64_t> cumulative = CumulativeCounts();
  const std::string sep = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    const std::string le = i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf";
    AppendSample(out, name + "_bucket", sep + "le=\"" + le + "\"", std::to_string(cumulative[i]));
  }
  AppendSample(out, name + "_sum", labels, FormatValue(sum()));
  AppendSample(out, name + "_count", labels, std::to_string(cumulative.back()));
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& help,
                                      const std::string& type) {
  for (auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type) throw std::logic_error("metric " + name + " registered as " + f->type);
    return *f;
  }
  families_.push_back(std::make_unique<Family>(Family{name, help, type, {}, nullptr}));
  return *families_.back();
}

template <typename T, typename... Args>
T& Registry::Get(const std::string& name, const std::string& help, const char* type,
                 const Labels& labels, Args&&... args) {
  std::lock_guard lk(mu_);
  Family& f = FamilyFor(name, help, type);
  if (f.collect) throw std::logic_error("metric " + name + " is a callback gauge");
  auto& slot = f.series[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<T>(std::forward<Args>(args)...);
  T* typed = dynamic_cast<T*>(slot.get());
  if (typed == nullptr) throw std::logic_error("metric " + name + " has another type");
  return *typed;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  return Get<Counter>(name, help, "counter", labels);
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  return Get<Gauge>(name, help, "gauge", labels);
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const Labels& labels, std::vector<double> bounds) {
  return Get<Histogram>(name, help, "histogram", labels, std::move(bounds));
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<std::vector<Sample>()> collect) {
  std::lock_guard lk(mu_);
  Family& f = FamilyFor(name, help, "gauge");
  if (!f.series.empty() || f.collect) throw std::logic_error("metric " + name + " already exists");
  f.collect = std::move(collect);
}

std::string Registry::Render() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f->name + " " + EscapeHelp(f->help) + "\n";
    out += "# TYPE " + f->name + " " + f->type + "\n";
    if (f->collect) {
      for (const Sample& s : f->collect())
        AppendSample(out, f->name, RenderLabels(s.labels), FormatValue(s.value));
    }
    for (const auto& [labels, series] : f->series) series->Render(f->name, labels, out);
  }
  return out;
}

}  // namespace kelpie::metrics
