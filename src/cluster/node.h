// A sheep as the cluster sees it: where it listens, its zone, and how many virtual nodes it puts
// on the ring.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kelpie::cluster {

struct NodeInfo {
  std::string addr;  // numeric IPv4/IPv6 address other sheep and clients connect to
  uint16_t port = 7000;
  uint32_t zone = 0;
  uint16_t nr_vnodes = 128;

  // "addr:port": the node's identity in the cluster.
  std::string id() const;
  bool operator==(const NodeInfo& o) const { return addr == o.addr && port == o.port; }
  bool operator<(const NodeInfo& o) const;  // by addr, then port
};

// Sheepdog's default zone: the IPv4 address as a little-endian u32 (127.0.0.1 -> 0x0100007f).
uint32_t DefaultZone(const std::string& addr);

}  // namespace kelpie::cluster
