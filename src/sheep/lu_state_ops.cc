// LU_STATE_GET / LU_STATE_CAS: the state iSCSI targets share for one exported VDI (persistent
// reservations, unit attentions, port groups). Sheep keeps it opaque, per VDI name, in the
// cluster state: a CAS is an ordered cluster operation followed by a barrier, so once it is
// acknowledged every gateway serves the new state to every target.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "sheep/coherence.h"
#include "sheep/ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace res = proto::res;
using nlohmann::json;

namespace {

constexpr size_t kMaxLuState = 256 * 1024;

bool ParseBody(const Request& req, json* out) {
  try {
    *out = json::parse(req.data.begin(), req.data.end());
    return out->is_object() && out->contains("name") && out->at("name").is_string() &&
           !out->at("name").get<std::string>().empty();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

asio::awaitable<Reply> HandleLuStateGet(Sheep& s, Request& req, const ClientInfo&) {
  json body;
  if (!ParseBody(req, &body)) co_return Reply::Error(req.hdr, res::kInvalidParms);
  const std::string name = body.at("name");
  const std::string reply = s.WithState([&](const ClusterState& st) {
    const auto it = st.lu_states.find(name);
    json j = json::object();
    j["version"] = it == st.lu_states.end() ? 0 : it->second.version;
    j["state"] = it == st.lu_states.end() ? std::string() : it->second.state;
    j["generation"] = st.lu_generation;
    return j.dump();
  });
  co_return JsonReply(req.hdr, reply);
}

asio::awaitable<Reply> HandleLuStateCas(Sheep& s, Request& req, const ClientInfo&) {
  json body;
  if (!ParseBody(req, &body) || !body.contains("expect") || !body.at("expect").is_number() ||
      !body.contains("state") || !body.at("state").is_string() ||
      body.at("state").get_ref<const std::string&>().size() > kMaxLuState) {
    co_return Reply::Error(req.hdr, res::kInvalidParms);
  }
  json op = json::object();
  op["type"] = "lu_state_cas";
  op["name"] = body.at("name");
  op["expect"] = body.at("expect");
  op["state"] = body.at("state");
  const json r = co_await s.SubmitClusterOp(std::move(op));
  const uint32_t rc = r.value("result", uint32_t(res::kSystemError));
  json out = json::object();
  out["version"] = r.value("version", uint64_t(0));
  out["generation"] = r.value("generation", uint64_t(0));
  if (rc != res::kSuccess) {
    Reply e = JsonReply(req.hdr, out.dump());
    e.hdr.set_result(rc);
    co_return e;
  }
  // Every gateway has the new state before the target acts on it (e.g. answers GOOD to a
  // PERSISTENT RESERVE OUT that the other targets must already enforce).
  if (const uint32_t b = co_await ClusterBarrier(s, r.value("seq", uint64_t(0)));
      b != res::kSuccess) {
    co_return Reply::Error(req.hdr, b);
  }
  co_return JsonReply(req.hdr, out.dump());
}

}  // namespace kelpie::sheep
