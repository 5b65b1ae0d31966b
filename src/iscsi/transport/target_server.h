// The iSCSI target server: listens on every portal, keeps the registry of targets (iqn → LU 0)
// and of sessions (initiator name + ISID → session, TSIH allocation, reinstatement), answers
// SendTargets, and runs blocking LU calls (NexusLogin/NexusGone/Reset, lazy VDI opening) on a
// thread pool so the I/O thread never blocks on them.
#pragma once
// A standard header before asio: asio's configuration (e.g. aligned allocation) depends on
// libstdc++'s macros and must be the same in every translation unit.
// clang-format off
#include <cstddef>
#include <asio.hpp>
// clang-format on
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "iscsi/scsi/logical_unit.h"
#include "iscsi/transport/login.h"
#include "iscsi/transport/session.h"
#include "iscsi/transport/target_stats.h"

namespace kelpie::iscsi {

class Connection;

struct Portal {
  std::string host;  // as given: IPv4, IPv6 (without brackets) or 0.0.0.0 / ::
  uint16_t port = 0;
};
// "ADDR:PORT" or "[V6]:PORT".
std::optional<Portal> ParsePortal(const std::string& spec);

struct ServerConfig {
  std::vector<Portal> portals;
  LoginConfig login;      // limits, CHAP, portal group tag, CmdSN window
  uint16_t rel_port = 1;  // this process's relative target port id (I_T nexus identity)
  int blocking_threads = 4;
  std::shared_ptr<const TargetStats> stats;  // null: nothing counted (no --metrics)
  // What one initiator may hold or stall: connections over max_connections are closed at once;
  // a connection must complete its login within login_timeout_s, and a PDU whose first byte
  // arrived must be complete within pdu_timeout_s (slow-loris peers are dropped).
  size_t max_connections = 1024;
  int login_timeout_s = 30;
  int pdu_timeout_s = 30;
};

// Finds targets that are not registered yet (--export-all): called off the I/O thread with a
// wanted target name (or "" for every new one) and the names already known; returns the targets
// it could open, by name.
using TargetResolver = std::function<std::map<std::string, std::shared_ptr<scsi::LogicalUnit>>(
    const std::string& wanted, const std::set<std::string>& known)>;

class TargetServer {
 public:
  TargetServer(asio::io_context& io, ServerConfig config);
  ~TargetServer();

  void AddTarget(const std::string& iqn, std::shared_ptr<scsi::LogicalUnit> lu);
  void SetResolver(TargetResolver resolver) { resolver_ = std::move(resolver); }
  // Binds every portal; throws std::system_error with the portal named in what().
  void Listen();
  // Stops accepting, closes every connection (NexusGone for each nexus) and waits for the
  // blocking work to finish. Call from the I/O thread; run the io_context afterwards to flush.
  void Shutdown();
  void WaitForBlockingWork();

  // --- for connections (I/O thread) ---
  const ServerConfig& config() const { return config_; }
  asio::thread_pool& blocking_pool() { return pool_; }
  std::shared_ptr<scsi::LogicalUnit> FindTarget(const std::string& iqn);
  // Blocking: registers iqn through the resolver if unknown. Returns whether it exists now.
  bool ResolveTarget(const std::string& iqn);
  // Blocking: lets the resolver add targets that appeared since startup.
  void RefreshTargets();
  // SendTargets=<which> ("All", an iqn, or "" = current_target) as TargetName/TargetAddress
  // pairs; portals on a wildcard address use the connection's local address.
  KeyValues SendTargets(const std::string& which, const std::string& current_target,
                        const asio::ip::tcp::endpoint& local);

  struct Admission {
    std::shared_ptr<Session> session;
    uint16_t status = login_status::kSuccess;  // non-zero: fail the login with it
    bool reinstated = false;                   // an older session of the same nexus was closed
    std::string why;
  };
  // Creates the session a completed login asks for (reinstating an older one of the same
  // initiator name + ISID when TSIH is 0).
  Admission AdmitSession(const Login& login, std::shared_ptr<scsi::LogicalUnit> lu);
  void SessionEnded(const Session* session);
  // Every session logged in to lu (LUN RESET aborts their tasks; cold reset closes them).
  std::vector<std::shared_ptr<Session>> SessionsOf(const scsi::LogicalUnit* lu);
  void ConnectionEnded(const Connection* c);

 private:
  asio::awaitable<void> Accept(std::shared_ptr<asio::ip::tcp::acceptor> acceptor);
  void Resolve(const std::string& wanted);

  asio::io_context& io_;
  ServerConfig config_;
  asio::thread_pool pool_;
  TargetResolver resolver_;
  std::mutex targets_mu_;  // targets_ is also updated from the blocking pool
  std::map<std::string, std::shared_ptr<scsi::LogicalUnit>> targets_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  // By initiator name, ISID and target name (NUL-separated).
  std::map<std::string, std::weak_ptr<Session>> sessions_;
  std::map<const Connection*, std::weak_ptr<Connection>> connections_;
  // Publishes the sizes of sessions_ and connections_ (after every change) to config_.stats.
  void UpdateCountGauges();
  uint16_t next_tsih_ = 1;
  bool stopping_ = false;
};

}  // namespace kelpie::iscsi
