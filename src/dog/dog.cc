#include "dog/dog.h"

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "client/units.h"
#include "proto/constants.h"

namespace kelpie::dog {

std::unique_ptr<client::SyncClient> Context::Connect() const { return Connect(addr, port); }

std::unique_ptr<client::SyncClient> Context::Connect(const std::string& a, uint16_t p) const {
  try {
    return std::make_unique<client::SyncClient>(a, p);
  } catch (const client::NetworkError& e) {
    throw DogError(kExitSysfail, e.what());
  }
}

int ExitCodeFor(uint32_t result) {
  namespace res = proto::res;
  switch (result) {
    case res::kVdiExist:
      return kExitExists;
    case res::kNoVdi:
    case res::kNoTag:
    case res::kNoObj:
      return kExitMissing;
    case res::kNoSpace:
    case res::kFullVdi:
      return kExitFull;
    case res::kWaitForFormat:
    case res::kShutdown:
    case res::kNetwork:
    case res::kSystemError:
      return kExitSysfail;
    default:
      return kExitFailure;
  }
}

void Check(uint32_t result, const std::string& what) {
  if (result != proto::res::kSuccess) {
    throw DogError(ExitCodeFor(result), what + ": " + std::string(proto::ResultText(result)));
  }
}

uint64_t SizeArg(const std::string& text) {
  const auto v = client::ParseSize(text);
  if (!v) {
    throw DogError(kExitUsage, "Invalid size '" + text +
                                   "': use B, K, M, G, T or P suffixes for bytes, kilobytes, "
                                   "megabytes, gigabytes, terabytes and petabytes");
  }
  return *v;
}

void AddJsonFlag(CLI::App* command, Context& ctx) {
  command->add_flag("--json", ctx.json, "print one JSON document (fields: see README)");
}

void PrintJson(const nlohmann::json& doc) { fmt::print("{}\n", doc.dump(2)); }

}  // namespace kelpie::dog

int main(int argc, char** argv) {
  using namespace kelpie::dog;
  Context ctx;
  CLI::App app{"dog: administer a Kelpie (sheepdog compatible) cluster"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("-a,--address", ctx.addr, "sheep address (default 127.0.0.1)");
  app.add_option("-p,--port", ctx.port, "sheep port (default 7000)");
  app.add_flag("-r,--raw", ctx.raw, "raw output for scripts");
  AddClusterCommands(app, ctx);
  AddNodeCommands(app, ctx);
  AddVdiCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    std::cerr << "Invalid command or argument: " << e.what() << " (try --help)\n";
    return kExitUsage;
  } catch (const CLI::ParseError& e) {
    std::cerr << "dog: "
              << (dynamic_cast<const CLI::RequiredError*>(&e)
                      ? std::string("unknown or missing command")
                      : std::string(e.what()))
              << " (try --help)\n";
    return kExitUsage;
  } catch (const DogError& e) {
    std::cerr << e.what() << "\n";
    return e.code();
  } catch (const kelpie::client::NetworkError& e) {
    std::cerr << e.what() << "\n";
    return kExitSysfail;
  } catch (const std::exception& e) {
    std::cerr << "dog: " << e.what() << "\n";
    return kExitFailure;
  }
  return 0;
}
