// The metrics library: text exposition format 0.0.4 (HELP/TYPE, labels and their escaping,
// cumulative histogram buckets with le="+Inf", _sum and _count), and the HTTP request handling.
#include <gtest/gtest.h>

#include <thread>

#include "metrics/http_server.h"
#include "metrics/registry.h"

namespace kelpie::metrics {
namespace {

TEST(MetricsRegistry, CountersAndGaugesRenderWithHelpTypeAndLabels) {
  Registry r;
  r.GetCounter("kelpie_x_total", "Things done", {{"op", "READ_OBJ"}}).Add(3);
  r.GetCounter("kelpie_x_total", "Things done", {{"op", "WRITE_OBJ"}}).Add();
  r.GetCounter("kelpie_x_total", "Things done", {{"op", "READ_OBJ"}}).Add(2);  // same series
  r.GetGauge("kelpie_g", "A level").Set(-7);
  EXPECT_EQ(r.Render(),
            "# HELP kelpie_x_total Things done\n"
            "# TYPE kelpie_x_total counter\n"
            "kelpie_x_total{op=\"READ_OBJ\"} 5\n"
            "kelpie_x_total{op=\"WRITE_OBJ\"} 1\n"
            "# HELP kelpie_g A level\n"
            "# TYPE kelpie_g gauge\n"
            "kelpie_g -7\n");
}

TEST(MetricsRegistry, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.GetGauge("g", "back\\slash\nnewline", {{"a", "q\"u\\o\nte"}, {"b", ""}}).Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP g back\\\\slash\\nnewline\n"
            "# TYPE g gauge\n"
            "g{a=\"q\\\"u\\\\o\\nte\",b=\"\"} 1\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Latency", {{"op", "X"}}, {0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 3.0, 42.0}) h.Observe(v);  // a bound is inclusive (le)
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(r.Render(),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{op=\"X\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{op=\"X\",le=\"1\"} 4\n"
            "lat_seconds_bucket{op=\"X\",le=\"10\"} 5\n"
            "lat_seconds_bucket{op=\"X\",le=\"+Inf\"} 6\n"
            "lat_seconds_sum{op=\"X\"} 46.65\n"
            "lat_seconds_count{op=\"X\"} 6\n");
  EXPECT_THROW(Histogram({1, 1}), std::logic_error);
}

TEST(MetricsRegistry, CallbackGaugesAreReadAtScrapeTime) {
  Registry r;
  double level = 1;
  r.AddCallbackGauge("kelpie_level", "Read at scrape", [&level] {
    return std::vector<Sample>{{{{"state", "a"}}, level}, {{{"state", "b"}}, 0.5}};
  });
  EXPECT_NE(r.Render().find("kelpie_level{state=\"a\"} 1\n"), std::string::npos);
  level = 2;
  EXPECT_NE(r.Render().find("kelpie_level{state=\"a\"} 2\nkelpie_level{state=\"b\"} 0.5\n"),
            std::string::npos);
}

TEST(MetricsRegistry, ANameKeepsItsType) {
  Registry r;
  r.GetCounter("n", "h");
  EXPECT_THROW(r.GetGauge("n", "h"), std::logic_error);
  EXPECT_THROW(r.AddCallbackGauge("n", "h", [] { return std::vector<Sample>{}; }),
               std::logic_error);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.GetCounter("c_total", "h");
  Histogram& h = r.GetHistogram("h_seconds", "h");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Add();
        h.Observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.CumulativeCounts().back(), 40000u);
}

TEST(MetricsHttp, RequestsAreAnsweredByPathMethodAndShape) {
  auto render = [] { return std::string("m 1\n"); };
  const HttpResponse ok = Respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", render);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "m 1\n");
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Respond("GET /metrics?x=1 HTTP/1.0\r\n\r\n", render).status, 200);
  EXPECT_EQ(Respond("HEAD /metrics HTTP/1.1\r\n\r\n", render).body, "");
  EXPECT_EQ(Respond("GET / HTTP/1.1\r\n\r\n", render).status, 404);
  EXPECT_EQ(Respond("POST /metrics HTTP/1.1\r\n\r\n", render).status, 405);
  for (const char* bad :
       {"", "\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics HTTP/9.9\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n"}) {
    EXPECT_EQ(Respond(bad, render).status, 400) << bad;
  }
}

TEST(MetricsHttp, ABadListenAddressIsAClearError) {
  for (const char* bad : {"nocolon", "127.0.0.1:", "127.0.0.1:99999", "not-an-ip:9100"}) {
    try {
      MetricsServer s(bad, [] { return std::string(); });
      ADD_FAILURE() << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  MetricsServer any("127.0.0.1:0", [] { return std::string(); });
  EXPECT_NE(any.port(), 0);
}

}  // namespace
}  // namespace kelpie::metrics
