// dog node list | info | recovery
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/units.h"
#include "dog/dog.h"
#include "dog/progress.h"
#include "proto/constants.h"

namespace kelpie::dog {

using nlohmann::json;

namespace {

struct Node {
  std::string addr;
  uint16_t port;
  uint32_t zone;
  int vnodes;
  std::string id() const { return fmt::format("{}:{}", addr, port); }
  // The fields of a node in --json output.
  json ToJson(size_t index) const {
    return {{"index", index}, {"id", id()},   {"addr", addr},
            {"port", port},   {"zone", zone}, {"vnodes", vnodes}};
  }
};

std::vector<Node> NodeList(Context& ctx) {
  auto c = ctx.Connect();
  std::string reply;
  Check(c->Admin(proto::op::kGetNodeList, "", &reply), "Failed to get node list");
  std::vector<Node> nodes;
  const json j = json::parse(reply);
  for (const auto& n : j.at("nodes")) {
    nodes.push_back({n.at("addr"), n.at("port"), n.at("zone"), n.at("vnodes")});
  }
  return nodes;
}

json AskNode(Context& ctx, const Node& n, uint8_t opcode) {
  auto c = ctx.Connect(n.addr, n.port);
  std::string reply;
  Check(c->Admin(opcode, "", &reply), "Failed to ask " + n.id());
  return json::parse(reply);
}

// Polls every node until none recovers; the progress is the sum over the recovering nodes.
void WatchRecovery(Context& ctx) {
  Progress progress("recovery", 0, Progress::Unit::kObjects);
  for (;;) {
    uint64_t done = 0, total = 0;
    bool recovering = false;
    for (const Node& n : NodeList(ctx)) {
      const json j = AskNode(ctx, n, proto::op::kRecoveryStatus);
      if (!j.at("recovering").get<bool>()) continue;
      recovering = true;
      done += j.at("done").get<uint64_t>();
      total += j.at("total").get<uint64_t>();
    }
    if (!recovering) return;
    progress.Update(done, total);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

void AddNodeCommands(CLI::App& app, Context& ctx) {
  auto* node = app.add_subcommand("node", "node commands");
  node->require_subcommand(1);

  auto* list = node->add_subcommand("list", "list the nodes");
  AddJsonFlag(list, ctx);
  list->callback([&ctx] {
    const auto nodes = NodeList(ctx);
    if (ctx.json) {
      json out = json::array();
      for (size_t i = 0; i < nodes.size(); ++i) out.push_back(nodes[i].ToJson(i));
      PrintJson({{"nodes", out}});
      return;
    }
    if (!ctx.raw) fmt::print("  Id   Host:Port         V-Nodes       Zone\n");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      if (ctx.raw) {
        fmt::print("{} {} {} {}\n", i, n.id(), n.vnodes, n.zone);
      } else {
        fmt::print("{:4}   {:<20}\t{:2}{:11}\n", i, n.id(), n.vnodes, n.zone);
      }
    }
  });

  node->add_subcommand("info", "show each node's store usage")->callback([&ctx] {
    const auto nodes = NodeList(ctx);
    if (!ctx.raw) fmt::print("Id\tSize\tUsed\tAvail\tUse%\n");
    uint64_t total = 0, used_total = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const json j = AskNode(ctx, nodes[i], proto::op::kGetNodeInfo);
      const uint64_t size = j.at("size"), used = j.at("used");
      const uint64_t avail = size > used ? size - used : 0;
      const int pct = size == 0 ? 0 : int(double(used) / double(size) * 100);
      fmt::print(fmt::runtime(ctx.raw ? "{} {} {} {} {}%\n" : "{:2}\t{}\t{}\t{}\t{:3}%\n"), i,
                 client::StrNumber(size, ctx.raw), client::StrNumber(used, ctx.raw),
                 client::StrNumber(avail, ctx.raw), pct);
      total += size;
      used_total += used;
    }
    const int pct = total == 0 ? 0 : int(double(used_total) / double(total) * 100);
    fmt::print(fmt::runtime(ctx.raw ? "Total {} {} {} {}%\n" : "Total\t{}\t{}\t{}\t{:3}%\n"),
               client::StrNumber(total, ctx.raw), client::StrNumber(used_total, ctx.raw),
               client::StrNumber(total - used_total, ctx.raw), pct);
  });

  auto* recovery = node->add_subcommand("recovery", "show the nodes still recovering");
  AddJsonFlag(recovery, ctx);
  auto watch = std::make_shared<bool>(false);
  recovery->add_flag("-w,--watch", *watch,
                     "wait until no node recovers (with a progress bar on a terminal)");
  recovery->callback([&ctx, watch] {
    if (*watch) WatchRecovery(ctx);
    const auto nodes = NodeList(ctx);
    if (ctx.json) {
      // Every node, recovering or not, with its progress.
      json out = json::array();
      for (size_t i = 0; i < nodes.size(); ++i) {
        const json j = AskNode(ctx, nodes[i], proto::op::kRecoveryStatus);
        json n = nodes[i].ToJson(i);
        for (const char* k : {"epoch", "recovering", "done", "total"}) n[k] = j.at(k);
        out.push_back(std::move(n));
      }
      PrintJson({{"nodes", out}});
      return;
    }
    if (!ctx.raw) {
      fmt::print("Nodes In Recovery:\n");
      fmt::print("  Id   Host:Port         V-Nodes       Zone       Progress\n");
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      const json j = AskNode(ctx, nodes[i], proto::op::kRecoveryStatus);
      if (!j.at("recovering").get<bool>()) continue;
      const uint64_t done = j.at("done"), total = j.at("total");
      const auto& n = nodes[i];
      if (ctx.raw) {
        fmt::print("{} {} {} {} {} {}\n", i, n.id(), n.vnodes, n.zone, done, total);
      } else {
        fmt::print("{:4}   {:<20}{:5}{:11}{:11.1f}%\n", i, n.id(), n.vnodes, n.zone,
                   total == 0 ? 0.0 : 100.0 * double(done) / double(total));
      }
    }
  });
}

}  // namespace kelpie::dog
