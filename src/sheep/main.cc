// sheep: the Kelpie storage daemon. Flags follow sheepdog's sheep.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "sheep/sheep.h"

namespace {

// "-l dir=DIR,level=LEVEL" (sheepdog's log option; either part optional).
bool ParseLogOption(const std::string& spec, kelpie::sheep::Options& o) {
  size_t pos = 0;
  while (pos <= spec.size() && !spec.empty()) {
    const size_t end = std::min(spec.find(',', pos), spec.size());
    const std::string kv = spec.substr(pos, end - pos);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return false;
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "dir") {
      o.log_dir = v;
    } else if (k == "level") {
      o.log_level = v;
    } else {
      return false;
    }
    pos = end + 1;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  kelpie::sheep::Options o;
  CLI::App app{"sheep: the Kelpie storage daemon (sheepdog compatible)"};
  std::string log_spec;
  int zone = -1;
  app.add_flag("-f,--foreground", o.foreground, "stay in the foreground, log to stderr too");
  app.add_option("-p,--port", o.port, "listen port (default 7000)");
  app.add_option("-b,--bindaddr", o.bind_addr, "address to listen on (default 0.0.0.0)");
  app.add_option("-y,--myaddr", o.my_addr, "address announced to the cluster");
  app.add_option("-z,--zone", zone, "zone id (default: derived from the address)");
  app.add_option("-c,--cluster", o.cluster_spec,
                 "membership driver: local[:FILE] or "
                 "zookeeper:HOST:PORT[,HOST:PORT...][,timeout=SECONDS]");
  app.add_option("-l,--log", log_spec, "log options: dir=DIR,level=LEVEL");
  app.add_option("-V,--vnodes", o.vnodes, "virtual nodes on the ring (default 128)")
      ->check(CLI::Range(1, 65535));
  app.add_option("-t,--threads", o.threads, "request threads (default: half the CPUs, at least 1)")
      ->check(CLI::Range(1, 64));
  app.add_option("--metrics", o.metrics, "serve Prometheus metrics at http://ADDR:PORT/metrics");
  app.set_config("--config", "", "read options from a TOML/INI file (the command line wins)");
  app.allow_config_extras(false);  // an unknown key in the file is an error, not ignored
  app.add_option("--capacity", o.capacity,
                 "bytes the object store may use, e.g. 64M (default: the disk's size); writes "
                 "beyond it are answered NO_SPACE")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--max-connections", o.max_connections,
                 "client connections served at once; more are closed (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--header-timeout", o.header_timeout_s,
                 "seconds a request may take to arrive once begun; slower peers are dropped "
                 "(default 30)")
      ->check(CLI::Range(1, 86400));
  app.add_option("--idle-timeout", o.idle_timeout_s,
                 "seconds a silent connection is kept (default 0: forever)")
      ->check(CLI::Range(0, 86400 * 365));
  app.add_option("--max-inflight-bytes", o.max_inflight_bytes,
                 "data bytes the requests of one connection may hold (default 64 MiB)")
      ->check(CLI::Range(size_t(1) << 20, size_t(1) << 40));
  app.add_option("dir", o.dir, "data directory")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!ParseLogOption(log_spec, o)) {
    std::cerr << "sheep: bad -l option '" << log_spec << "' (want dir=DIR,level=LEVEL)\n";
    return 64;
  }
  o.zone = zone;
  if (o.my_addr.empty())
    o.my_addr = (o.bind_addr == "0.0.0.0" || o.bind_addr == "::") ? "127.0.0.1" : o.bind_addr;

  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) {
    std::cerr << "sheep: cannot create " << o.dir << ": " << ec.message() << "\n";
    return 1;
  }
  if (o.log_dir.empty()) o.log_dir = o.dir;
  std::filesystem::create_directories(o.log_dir, ec);

  const auto level = spdlog::level::from_str(o.log_level);
  if (level == spdlog::level::off && o.log_level != "off") {
    std::cerr << "sheep: unknown log level '" << o.log_level << "'\n";
    return 64;
  }
  if (!o.foreground && daemon(1, 0) != 0) {
    std::perror("sheep: daemon");
    return 1;
  }
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(o.log_dir + "/sheep.log"));
  if (o.foreground) sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("sheep", sinks.begin(), sinks.end());
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);

  // Room for max_connections clients plus the store's and the peers' descriptors.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  kelpie::sheep::Sheep sheep(o);
  return sheep.Run();
}
