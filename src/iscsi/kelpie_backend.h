// KelpieBackend: a Kelpie VDI as a SCSI BlockBackend. It opens the VDI through the cluster client
// library with a shared lock (a multipath participant, like tgtd) and keeps one inode cache for
// all worker threads; it fails over to the next sheep of the list when its sheep dies.
#pragma once
#include <asio.hpp>
#include <memory>
#include <string>
#include <vector>

#include "iscsi/scsi/block_backend.h"

namespace kelpie::iscsi {

// sheep: "HOST:PORT" endpoints, tried in order. client_id names this process to the cluster
// (SET_CLIENT_ID): connections with one id through one sheep are one lock participant.
// io: the transport's event loop (run by one thread); READs and WRITEs that the cached inode can
// place go to the cluster from there, pipelined on one connection (the non-blocking path of
// block_backend.h). Null: every command takes a worker thread.
// Throws std::runtime_error with a one-line reason (no such VDI, no sheep reachable, ...).
std::unique_ptr<scsi::BlockBackend> OpenVdiBackend(const std::vector<std::string>& sheep,
                                                   const std::string& vdi,
                                                   const std::string& client_id,
                                                   asio::io_context* io = nullptr);

// Names of the cluster's VDIs that can be exported (working VDIs, not snapshots). Throws as above.
std::vector<std::string> ListVdis(const std::vector<std::string>& sheep);

}  // namespace kelpie::iscsi
