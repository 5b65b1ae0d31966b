// ConnectionPool: a client process's connections to the cluster, shared by its threads. Each
// thread takes a connection for one exchange (Acquire) and gives it back; a connection that failed
// is discarded and the next Acquire connects again, to the next sheep of the list when the
// current one cannot be reached (failover). Every new connection names the process with
// SET_CLIENT_ID, so all of them are one lock participant per sheep.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/sync_client.h"
#include "proto/constants.h"

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

  // Runs fn(SyncClient&) -> result code on a pooled connection. When the connection fails
  // (NetworkError) it is discarded, on_failure(error) runs, and fn is tried again on a fresh one
  // (the next sheep when this one is gone) after a growing pause; after `tries` failures the
  // answer is proto::res::kNetwork.
  template <typename Fn>
  uint32_t Retrying(Fn&& fn, int tries,
                    const std::function<void(const NetworkError&)>& on_failure = {}) {
    for (int attempt = 0; attempt < tries; ++attempt) {
      try {
        Lease lease = Acquire();
        try {
          return fn(*lease);
        } catch (const NetworkError&) {
          lease.Discard();
          throw;
        }
      } catch (const NetworkError& e) {
        if (on_failure) on_failure(e);
        std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
      }
    }
    return proto::res::kNetwork;
  }

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
