// kelpie-iscsi: Kelpie's iSCSI target. Serves Kelpie VDIs (and, for tests, RAM disks) as iSCSI
// targets `<iqn-prefix>:<name>`, LUN 0, on every --listen portal.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "iscsi/kelpie_backend.h"
#include "iscsi/scsi/logical_unit.h"
#include "iscsi/scsi/mem_backend.h"
#include "iscsi/transport/target_server.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"

namespace {

using kelpie::iscsi::TargetServer;
using kelpie::scsi::LogicalUnit;

struct Options {
  bool foreground = false;
  std::vector<std::string> listens;
  std::string sheep;
  std::vector<std::string> exports;
  bool export_all = false;
  std::string iqn_prefix = "iqn.2026-11.io.kelpie";
  std::string chap, mutual_chap;
  std::vector<std::string> ramdisks;
  int port_id = 0;
  std::string log_level = "info";
  std::string log_file;
  std::string metrics;  // --metrics ADDR:PORT ("" = off)
  size_t max_connections = 1024;
  int login_timeout_s = 30;
  int pdu_timeout_s = 30;
  int io_threads = 8;
};

// A startup failure: one line for stderr, exit code 1.
struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Relative target port / port group id derived from the first portal (FNV-1a, 1..65535), so two
// processes on different portals differ.
uint16_t DerivePortId(const std::string& listen) {
  uint32_t h = 2166136261u;
  for (unsigned char c : listen) h = (h ^ c) * 16777619u;
  return uint16_t(1 + h % 65535);
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size() && !s.empty()) {
    const size_t end = std::min(s.find(',', pos), s.size());
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::shared_ptr<LogicalUnit> MakeLu(std::unique_ptr<kelpie::scsi::BlockBackend> backend,
                                    const std::string& iqn, uint16_t port_id, int workers) {
  kelpie::scsi::LuConfig cfg;
  cfg.workers = workers;
  cfg.rel_port = port_id;
  cfg.tpg = port_id;
  cfg.target_name = iqn;
  return std::make_shared<LogicalUnit>(std::move(backend), cfg);
}

// Everything the daemon does after the flags are checked; StartupError before it serves.
// `ready` is called once the portals listen.
int Serve(const Options& o, uint16_t port_id, const std::function<void()>& ready) {
  kelpie::iscsi::ServerConfig cfg;
  for (const auto& l : o.listens) cfg.portals.push_back(*kelpie::iscsi::ParsePortal(l));
  cfg.rel_port = port_id;
  cfg.max_connections = o.max_connections;
  cfg.login_timeout_s = o.login_timeout_s;
  cfg.pdu_timeout_s = o.pdu_timeout_s;
  if (!o.chap.empty()) cfg.login.chap = kelpie::iscsi::ParseChapCredentials(o.chap);
  if (!o.mutual_chap.empty())
    cfg.login.mutual_chap = kelpie::iscsi::ParseChapCredentials(o.mutual_chap);

  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::string client_id = fmt::format("kelpie-iscsi:{}:{}", host, port_id);
  const std::vector<std::string> sheep = SplitComma(o.sheep);
  const std::string prefix = o.iqn_prefix + ":";

  // Declared before the server (which counts into it) and the listener (which renders it).
  kelpie::metrics::Registry registry;
  std::unique_ptr<kelpie::metrics::MetricsServer> metrics;
  if (!o.metrics.empty()) {
    cfg.stats = kelpie::iscsi::TargetStats::Register(registry);
    try {
      metrics = std::make_unique<kelpie::metrics::MetricsServer>(
          o.metrics, [&registry] { return registry.Render(); });
    } catch (const std::exception& e) {
      throw StartupError(e.what());
    }
    spdlog::info("kelpie-iscsi: metrics at http://{}/metrics", o.metrics);
  }

  // One thread runs the I/O context: with the hint, a handler it posts for itself goes on that
  // thread's own queue instead of waking the reactor (an epoll_ctl per request otherwise).
  asio::io_context io(1);
  TargetServer server(io, cfg);
  for (const auto& spec : o.ramdisks) {
    const size_t colon = spec.rfind(':');
    const std::string name = spec.substr(0, colon);
    const uint64_t mib = *kelpie::iscsi::ParseNumber(spec.substr(colon + 1));  // checked
    auto store = kelpie::scsi::MakeMemStore(name, mib << 20);
    server.AddTarget(prefix + name, MakeLu(kelpie::scsi::MakeMemBackend(store), prefix + name,
                                           port_id, o.io_threads));
    spdlog::info("iscsi: target {}{} is a {} MiB RAM disk", prefix, name, mib);
  }
  for (const auto& vdi : o.exports) {
    try {
      server.AddTarget(prefix + vdi,
                       MakeLu(kelpie::iscsi::OpenVdiBackend(sheep, vdi, client_id, &io),
                              prefix + vdi, port_id, o.io_threads));
      spdlog::info("iscsi: target {}{} serves VDI {}", prefix, vdi, vdi);
    } catch (const std::exception& e) {
      const std::string why = e.what();
      throw StartupError(why.find(vdi) != std::string::npos
                             ? why
                             : fmt::format("cannot open VDI {}: {}", vdi, why));
    }
  }
  if (o.export_all) {
    auto resolver = [&io, sheep, prefix, client_id, port_id, workers = o.io_threads](
                        const std::string& wanted, const std::set<std::string>& known) {
      std::map<std::string, std::shared_ptr<LogicalUnit>> found;
      for (const std::string& vdi : kelpie::iscsi::ListVdis(sheep)) {
        const std::string iqn = prefix + vdi;
        if (known.count(iqn) || (!wanted.empty() && iqn != wanted)) continue;
        try {
          found[iqn] = MakeLu(kelpie::iscsi::OpenVdiBackend(sheep, vdi, client_id, &io), iqn,
                              port_id, workers);
        } catch (const std::exception& e) {
          spdlog::warn("iscsi: cannot open VDI {}: {}", vdi, e.what());
        }
      }
      return found;
    };
    try {
      for (auto& [iqn, lu] : resolver("", {})) server.AddTarget(iqn, lu);
    } catch (const std::exception& e) {
      throw StartupError(fmt::format("cannot list the cluster's VDIs: {}", e.what()));
    }
    server.SetResolver(resolver);
  }
  try {
    server.Listen();
  } catch (const std::exception& e) {
    throw StartupError(e.what());
  }
  spdlog::info("kelpie-iscsi: serving (port id {}, client id {})", port_id, client_id);
  ready();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("kelpie-iscsi: signal {}: shutting down", sig);
    server.Shutdown();
  });
  for (;;) {  // an exception escaping a handler is logged; the daemon serves on
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("kelpie-iscsi: unexpected error on the I/O thread: {}", e.what());
    }
  }
  server.WaitForBlockingWork();
  spdlog::info("kelpie-iscsi: stopped");
  return 0;
}

void SetUpLogging(const Options& o, spdlog::level::level_enum level, uint16_t port_id) {
  std::vector<spdlog::sink_ptr> sinks;
  std::string file = o.log_file;
  if (file.empty() && !o.foreground) file = fmt::format("kelpie-iscsi-{}.log", port_id);
  if (!file.empty()) sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  if (o.foreground) sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("kelpie-iscsi", sinks.begin(), sinks.end());
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Checks flag values the parser cannot; returns the error line or "".
std::string CheckOptions(const Options& o) {
  for (const auto& l : o.listens)
    if (!kelpie::iscsi::ParsePortal(l)) return fmt::format("bad --listen '{}' (want ADDR:PORT)", l);
  if (!o.exports.empty() && o.export_all) return "--export and --export-all exclude each other";
  if ((!o.exports.empty() || o.export_all) && SplitComma(o.sheep).empty())
    return "--export/--export-all need --sheep HOST:PORT[,HOST:PORT...]";
  if (o.exports.empty() && !o.export_all && o.ramdisks.empty())
    return "nothing to serve: give --export VDI, --export-all or --ramdisk NAME:MiB";
  for (const auto& r : o.ramdisks) {
    const size_t colon = r.rfind(':');
    const auto mib =
        colon == std::string::npos ? std::nullopt : kelpie::iscsi::ParseNumber(r.substr(colon + 1));
    if (colon == 0 || !mib || *mib == 0 || *mib > (1u << 20))
      return fmt::format("bad --ramdisk '{}' (want NAME:MiB)", r);
  }
  if (!o.chap.empty() && !kelpie::iscsi::ParseChapCredentials(o.chap))
    return "bad --chap (want USER:SECRET)";
  if (!o.mutual_chap.empty() && !kelpie::iscsi::ParseChapCredentials(o.mutual_chap))
    return "bad --mutual-chap (want USER:SECRET)";
  if (!o.mutual_chap.empty() && o.chap.empty()) return "--mutual-chap needs --chap";
  if (o.iqn_prefix.empty()) return "empty --iqn-prefix";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"kelpie-iscsi: the Kelpie iSCSI target"};
  app.add_flag("-f,--foreground", o.foreground, "stay in the foreground, log to stderr");
  app.add_option("--listen", o.listens, "portal ADDR:PORT to listen on (repeatable)")->required();
  app.add_option("--sheep", o.sheep, "cluster sheep HOST:PORT[,HOST:PORT...]");
  app.add_option("--export", o.exports, "VDI to export (repeatable)");
  app.add_flag("--export-all", o.export_all, "export every VDI of the cluster");
  app.add_option("--iqn-prefix", o.iqn_prefix,
                 "target name prefix (default iqn.2026-11.io.kelpie)");
  app.add_option("--chap", o.chap, "require CHAP: the initiator logs in as USER with SECRET");
  app.add_option("--mutual-chap", o.mutual_chap, "answer mutual CHAP as USER with SECRET");
  app.add_option("--ramdisk", o.ramdisks, "serve an in-memory disk NAME of MiB (repeatable)");
  app.add_option("--port-id", o.port_id, "relative target port / port group id (1..65535)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error (default info)");
  app.add_option("--log-file", o.log_file, "log file");
  app.add_option("--metrics", o.metrics, "serve Prometheus metrics at http://ADDR:PORT/metrics");
  app.set_config("--config", "", "read options from a TOML/INI file (the command line wins)");
  app.allow_config_extras(false);  // an unknown key in the file is an error, not ignored
  app.add_option("--max-connections", o.max_connections,
                 "connections served at once; more are closed (default 1024)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--login-timeout", o.login_timeout_s,
                 "seconds a connection may take to log in (default 30)")
      ->check(CLI::Range(1, 86400));
  app.add_option("--pdu-timeout", o.pdu_timeout_s,
                 "seconds a PDU may take to arrive once begun; slower peers are dropped "
                 "(default 30)")
      ->check(CLI::Range(1, 86400));
  app.add_option("--io-threads", o.io_threads,
                 "SCSI commands of one LU run against the cluster at once, each on its own "
                 "thread and connection (default 8)")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (const std::string err = CheckOptions(o); !err.empty()) {
    std::cerr << "kelpie-iscsi: " << err << "\n";
    return 64;
  }
  const auto level = spdlog::level::from_str(o.log_level);
  if (level == spdlog::level::off && o.log_level != "off") {
    std::cerr << "kelpie-iscsi: unknown log level '" << o.log_level << "'\n";
    return 64;
  }
  const uint16_t port_id = o.port_id ? uint16_t(o.port_id) : DerivePortId(o.listens.front());
  signal(SIGPIPE, SIG_IGN);

  // Daemon: the child does everything and reports "ok" or its startup error through a pipe, so
  // the parent can print it and exit non-zero.
  int report = -1;
  if (!o.foreground) {
    int fds[2];
    if (pipe(fds) != 0) {
      std::perror("kelpie-iscsi: pipe");
      return 1;
    }
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("kelpie-iscsi: fork");
      return 1;
    }
    if (pid > 0) {
      close(fds[1]);
      std::string msg;
      char buf[512];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, size_t(n));
      if (msg == "ok") return 0;
      std::cerr << "kelpie-iscsi: " << (msg.empty() ? "daemon exited during startup" : msg) << "\n";
      return 1;
    }
    close(fds[0]);
    report = fds[1];
    setsid();
  }
  auto tell_parent = [&report](const std::string& msg) {
    if (report < 0) return;
    [[maybe_unused]] ssize_t n = write(report, msg.data(), msg.size());
    close(report);
    report = -1;
  };
  try {
    SetUpLogging(o, level, port_id);
  } catch (const std::exception& e) {
    tell_parent(fmt::format("cannot open the log: {}", e.what()));
    if (o.foreground) std::cerr << "kelpie-iscsi: cannot open the log: " << e.what() << "\n";
    return 1;
  }
  auto ready = [&] {
    if (report < 0) return;
    tell_parent("ok");
    const int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0), dup2(null, 1), dup2(null, 2);
      if (null > 2) close(null);
    }
  };
  try {
    return Serve(o, port_id, ready);
  } catch (const std::exception& e) {
    if (o.foreground) {
      std::cerr << "kelpie-iscsi: " << e.what() << "\n";
    } else {
      spdlog::error("kelpie-iscsi: {}", e.what());
      tell_parent(e.what());
    }
    return 1;
  }
}
