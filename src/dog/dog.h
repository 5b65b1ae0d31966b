// dog: Kelpie's admin CLI, compatible in syntax and output with sheepdog's dog. Each command group
// registers its subcommands on the CLI11 app; a failing command throws DogError, which main prints
// as one line on stderr and turns into sheepdog's exit code.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>

#include "client/sync_client.h"

namespace kelpie::dog {

// Sheepdog's exit codes (include/exits.h).
inline constexpr int kExitFailure = 1;
inline constexpr int kExitSysfail = 2;
inline constexpr int kExitExists = 3;
inline constexpr int kExitFull = 4;
inline constexpr int kExitMissing = 5;
inline constexpr int kExitUsage = 64;

class DogError : public std::runtime_error {
 public:
  DogError(int code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

struct Context {
  std::string addr = "127.0.0.1";
  uint16_t port = 7000;
  bool raw = false;
  bool json = false;  // --json on a listing or info command: one JSON document on stdout

  // A connection to the sheep named by -a/-p (or another node).
  std::unique_ptr<client::SyncClient> Connect() const;
  std::unique_ptr<client::SyncClient> Connect(const std::string& addr, uint16_t port) const;
};

// Throws DogError for a result other than kSuccess, with `what` and the result's text.
void Check(uint32_t result, const std::string& what);
// The exit code sheepdog uses for a result.
int ExitCodeFor(uint32_t result);
// A size argument, or DogError(kExitUsage).
uint64_t SizeArg(const std::string& text);

// `-c N` (copies) or `-c D:P` (erasure coding: copies D+P, copy_policy (D/2)<<4 | P).
struct Redundancy {
  int copies = 0;
  uint8_t copy_policy = 0;
};
// Parses the -c argument; DogError(kExitUsage) with sheepdog's wording if invalid.
Redundancy ParseRedundancy(const std::string& text);
// How listings show a VDI's or the cluster's redundancy: "3", or "2:1" for erasure coding.
std::string RedundancyText(int copies, uint8_t copy_policy);
// DogError(kExitFailure) if the cluster has fewer zones than the strips of an erasure code.
void CheckZonesFor(Context& ctx, const Redundancy& r);
// Adds --json to a listing or info command (field names: README, "Machine-readable output").
void AddJsonFlag(CLI::App* command, Context& ctx);
// Prints `doc` as indented JSON and a newline.
void PrintJson(const nlohmann::json& doc);

void AddClusterCommands(CLI::App& app, Context& ctx);
void AddNodeCommands(CLI::App& app, Context& ctx);
void AddVdiCommands(CLI::App& app, Context& ctx);

}  // namespace kelpie::dog
