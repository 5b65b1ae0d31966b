// The redundancy argument of `dog cluster format -c` and `dog vdi create -c`: N copies, or D:P
// erasure coding (sheepdog's parse_copy), and how listings show it.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>

#include "dog/dog.h"
#include "proto/constants.h"
#include "proto/ec.h"

namespace kelpie::dog {

namespace {

int ParseCount(const std::string& text) {
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoi(text);
}

}  // namespace

Redundancy ParseRedundancy(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    const int n = ParseCount(text);
    if (n < 1 || n > int(proto::kMaxCopies)) {
      throw DogError(kExitUsage,
                     fmt::format("Invalid number of copies '{}' (1..{})", text, proto::kMaxCopies));
    }
    return {n, 0};
  }
  const std::string d_text = text.substr(0, colon), p_text = text.substr(colon + 1);
  const int d = ParseCount(d_text), p = ParseCount(p_text);
  if (d != 2 && d != 4 && d != 8 && d != 16) {
    throw DogError(kExitUsage,
                   fmt::format("Invalid data number '{}', should be 2, 4, 8 or 16", d_text));
  }
  if (p < 1 || p > proto::kEcMaxParity) {
    throw DogError(kExitUsage, fmt::format("Invalid parity number '{}', should be in range [1, {}]",
                                           p_text, proto::kEcMaxParity));
  }
  return {d + p, proto::EcCopyPolicy(d, p)};
}

std::string RedundancyText(int copies, uint8_t copy_policy) {
  const proto::EcPolicy ec = proto::EcFromCopyPolicy(copy_policy);
  if (ec.coded()) return fmt::format("{}:{}", ec.data, ec.parity);
  return std::to_string(copies);
}

void CheckZonesFor(Context& ctx, const Redundancy& r) {
  if (r.copy_policy == 0) return;
  auto c = ctx.Connect();
  std::string reply;
  Check(c->Admin(proto::op::kGetNodeList, "", &reply), "Failed to get node list");
  std::set<int64_t> zones;
  const nlohmann::json list = nlohmann::json::parse(reply);
  for (const auto& n : list.at("nodes")) zones.insert(n.at("zone").get<int64_t>());
  if (zones.size() < size_t(r.copies)) {
    throw DogError(kExitFailure,
                   fmt::format("Erasure coding {} needs {} nodes in distinct zones, the cluster "
                               "has {}",
                               RedundancyText(r.copies, r.copy_policy), r.copies, zones.size()));
  }
}

}  // namespace kelpie::dog
