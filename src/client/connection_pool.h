// ConnectionPool: a client process's connections to the cluster, shared by its threads. Each
// thread takes a connection for one exchange (Acquire) and gives it back; a connection that failed
// is discarded and the next Acquire connects again, to the next sheep of the list when the
// current one cannot be reached (failover). Every new connection names the process with
// SET_CLIENT_ID, so all of them are one lock participant per sheep.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/sync_client.h"

namespace kelpie::client {

class ConnectionPool {
 public:
  // endpoints: "HOST:PORT" (or "HOST", port 7000), tried in order. client_id may be empty.
  ConnectionPool(std::vector<std::string> endpoints, std::string client_id, int timeout_sec = 30);
  // One connection owned by the caller (dog, tests); exchanges on it are serialized.
  explicit ConnectionPool(SyncClient& borrowed);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  class Lease {
   public:
    Lease(Lease&& o) noexcept;
    ~Lease();
    SyncClient& operator*() const { return *conn_; }
    SyncClient* operator->() const { return conn_; }
    // The connection failed: close it instead of returning it to the pool.
    void Discard() { broken_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, SyncClient* conn) : pool_(pool), conn_(conn) {}
    ConnectionPool* pool_;
    SyncClient* conn_;
    bool broken_ = false;
  };

  // A connection for one exchange. Throws NetworkError when no sheep can be reached.
  Lease Acquire();
  // The sheep new connections go to.
  std::string endpoint() const;

 private:
  void Return(SyncClient* conn, bool broken);
  std::unique_ptr<SyncClient> Connect();

  std::vector<std::string> endpoints_;
  std::string client_id_;
  int timeout_sec_ = 30;
  SyncClient* borrowed_ = nullptr;

  mutable std::mutex mu_;
  size_t current_ = 0;  // index into endpoints_
  std::vector<std::unique_ptr<SyncClient>> idle_;
  std::vector<std::unique_ptr<SyncClient>> busy_;
  std::mutex borrowed_mu_;
};

// Splits "HOST:PORT" (IPv6 as "[addr]:port"); the port defaults to 7000.
void ParseEndpoint(const std::string& ep, std::string* host, uint16_t* port);

}  // namespace kelpie::client
