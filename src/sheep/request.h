// A request as a sheep receives it and the reply it sends, plus who sent it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "proto/header.h"

namespace kelpie::sheep {

struct Request {
  proto::Header hdr;
  std::vector<uint8_t> data;  // the request's data segment (CMD_WRITE)
};

struct Reply {
  proto::Header hdr;
  std::vector<uint8_t> data;

  static Reply Error(const proto::Header& req, uint32_t result) {
    return Reply{proto::MakeResponse(req, result), {}};
  }
  static Reply Ok(const proto::Header& req) { return Error(req, proto::res::kSuccess); }
  uint32_t result() const { return hdr.result(); }
};

// The connection a request arrived on: identifies the client for locks.
struct ClientInfo {
  std::string peer;         // "ip:port" of the remote end
  std::string participant;  // "<this sheep>/<peer>": lock participant id
  bool from_local = false;  // issued by this sheep itself (no connection)
};

}  // namespace kelpie::sheep
