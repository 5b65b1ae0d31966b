// dog cluster format | info | shutdown | check
#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "dog/dog.h"
#include "proto/constants.h"

namespace kelpie::dog {

using nlohmann::json;

void CheckAllVdis(Context& ctx);  // vdi_cmd.cc

namespace {

json AdminJson(Context& ctx, uint8_t opcode, const std::string& what) {
  auto c = ctx.Connect();
  std::string reply;
  Check(c->Admin(opcode, "", &reply), what);
  return json::parse(reply);
}

std::string TimeStr(uint64_t t, bool raw) {
  if (raw) return std::to_string(t);
  const time_t tt = time_t(t);
  struct tm tm;
  localtime_r(&tt, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// --json of `cluster info`: the sheep's STAT_CLUSTER reply under documented names.
json ClusterInfoJson(const json& stat) {
  json epochs = json::array();
  for (const auto& e : stat.at("epochs")) {
    epochs.push_back({{"epoch", e.at("epoch")}, {"time", e.at("time")}, {"nodes", e.at("nodes")}});
  }
  return {{"status", stat.at("status")},
          {"created", stat.at("ctime")},
          {"epoch", stat.at("epoch")},
          {"copies", stat.at("copies")},
          {"copy_policy", stat.at("copy_policy")},
          {"block_size_shift", stat.at("block_size_shift")},
          {"epochs", epochs}};
}

}  // namespace

void AddClusterCommands(CLI::App& app, Context& ctx) {
  auto* cluster = app.add_subcommand("cluster", "cluster commands");
  cluster->require_subcommand(1);

  auto* format = cluster->add_subcommand("format", "create a Kelpie store (drops all data)");
  auto copies = std::make_shared<std::string>("3");
  auto shift = std::make_shared<int>(int(proto::kDefaultBlockSizeShift));
  auto lock = std::make_shared<bool>(false);
  format->add_option("-c,--copies", *copies,
                     "number of copies N, or D:P erasure coding (default 3)");
  format->add_option("-z,--block_size_shift", *shift,
                     "object size as a power of two (20..31, default 22)");
  format->add_flag("-l,--lock", *lock,
                   "enable VDI locking (always on; accepted for compatibility)");
  format->callback([&ctx, copies, shift] {
    const Redundancy r = ParseRedundancy(*copies);
    if (*shift < proto::kMinBlockSizeShift || *shift > proto::kMaxBlockSizeShift) {
      throw DogError(kExitUsage, fmt::format("Invalid block size shift {} (20..31)", *shift));
    }
    CheckZonesFor(ctx, r);
    auto c = ctx.Connect();
    const json body = {{"copies", r.copies},
                       {"copy_policy", r.copy_policy},
                       {"block_size_shift", *shift},
                       {"lock", true}};
    Check(c->Admin(proto::op::kMakeFs, body.dump(), nullptr), "Format failed");
  });

  auto* info = cluster->add_subcommand("info", "show cluster information");
  AddJsonFlag(info, ctx);
  info->callback([&ctx] {
    const json j = AdminJson(ctx, proto::op::kStatCluster, "Failed to get cluster status");
    if (ctx.json) {
      PrintJson(ClusterInfoJson(j));
      return;
    }
    const std::string status = j.at("status");
    if (status == "running") {
      fmt::print("Cluster status: running, auto-recovery enabled\n\n");
      fmt::print("Cluster store: plain with {} redundancy policy\n\n",
                 RedundancyText(j.at("copies").get<int>(), j.value("copy_policy", uint8_t(0))));
      const time_t ct = time_t(j.at("ctime").get<uint64_t>());
      fmt::print("Cluster created at {}\n", std::string(ctime(&ct)));
    } else {
      fmt::print("Cluster status: {}\n\n",
                 status == "waiting for format" ? "Waiting for cluster to be formatted" : status);
    }
    fmt::print("Epoch Time           Version [Host:Port:V-Nodes,,,]\n");
    for (const auto& e : j.at("epochs")) {
      std::string nodes;
      for (const auto& n : e.at("nodes"))
        nodes += (nodes.empty() ? "" : ", ") + n.get<std::string>();
      fmt::print(fmt::runtime(ctx.raw ? "{} {} [{}]\n" : "{} {:6} [{}]\n"),
                 TimeStr(e.at("time"), ctx.raw), e.at("epoch").get<uint32_t>(), nodes);
    }
  });

  cluster->add_subcommand("shutdown", "stop every sheep of the cluster")->callback([&ctx] {
    auto c = ctx.Connect();
    Check(c->Admin(proto::op::kShutdown, "", nullptr), "Failed to shutdown cluster");
  });

  cluster->add_subcommand("check", "check and repair every copy of every VDI's objects")
      ->callback([&ctx] { CheckAllVdis(ctx); });
}

}  // namespace kelpie::dog
