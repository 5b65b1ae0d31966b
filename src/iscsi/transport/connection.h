// One iSCSI connection (RFC 7143): reads PDUs (header/data digests, size limits), runs the login,
// then serves the full feature phase of its session: CmdSN ordering, SCSI commands with R2T and
// Data-Out, Data-In and status, NOP, task management, Text (SendTargets), Logout and Reject.
// Everything runs on the I/O thread; LU results arrive from worker threads and are posted back.
// Every error ends with one log line saying why; a broken connection only ends itself.
// connection.cc: PDU I/O, login, dispatch, NOP, task management, Text, Logout;
// connection_tasks.cc: the SCSI task flow.
#pragma once
// A standard header before asio: asio's configuration (e.g. aligned allocation) depends on
// libstdc++'s macros and must be the same in every translation unit.
// clang-format off
#include <cstddef>
#include <asio.hpp>
// clang-format on
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "iscsi/transport/login.h"
#include "iscsi/transport/pdu.h"
#include "iscsi/transport/pdu_reader.h"
#include "iscsi/transport/scsi_task.h"
#include "iscsi/transport/session.h"

namespace kelpie::iscsi {

class TargetServer;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(TargetServer& server, asio::ip::tcp::socket socket);
  ~Connection();

  void Start();
  // Ends the connection now (idempotent): outstanding tasks are dropped, the nexus is gone.
  void Close(const std::string& why);
  // Ends it once everything queued has been written.
  void CloseAfterFlush(const std::string& why);
  const std::string& peer() const { return peer_; }

 private:
  enum class StatSnUse { kAdvance, kCurrent, kNone };
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  asio::awaitable<PduReadResult> ReadPdu(Pdu& pdu);
  asio::awaitable<void> HandleLoginPdu(Pdu pdu);
  asio::awaitable<void> CompleteLogin();
  asio::awaitable<void> HandlePdu(Pdu pdu, bool data_digest_ok);
  asio::awaitable<void> Dispatch(Pdu pdu);
  asio::awaitable<void> OnTaskManagement(Pdu pdu);
  asio::awaitable<void> OnText(Pdu pdu);
  asio::awaitable<void> OnLogout(Pdu pdu);
  void OnScsiCommand(const Pdu& pdu);
  void OnDataOut(const Pdu& pdu);
  void OnNopOut(const Pdu& pdu);
  // Runs fn on the blocking pool and resumes here when it is done (exceptions are logged).
  asio::awaitable<void> RunBlocking(std::function<void()> fn);

  // Stamps StatSN/ExpCmdSN/MaxCmdSN, encodes and queues for the writer.
  void Send(Pdu pdu, StatSnUse statsn);
  void SendReject(const Pdu& rejected, uint8_t reason);
  void SendTextChunk(uint32_t itt);

  // Task life.
  void Continue(const std::shared_ptr<ScsiTask>& task);
  void SolicitData(const std::shared_ptr<ScsiTask>& task);
  void Execute(const std::shared_ptr<ScsiTask>& task);
  void OnTaskDone(const std::shared_ptr<ScsiTask>& task, scsi::ScsiResult result);
  void FinishTask(const std::shared_ptr<ScsiTask>& task);
  void FailTask(const std::shared_ptr<ScsiTask>& task, uint8_t key, uint8_t asc, uint8_t ascq,
                const std::string& why);
  void AbortTask(const std::shared_ptr<ScsiTask>& task);
  void AbortAllTasks();
  void PumpR2TWaiters();
  uint32_t NextTtt();
  uint64_t PendingDataBudget() const;

  TargetServer& server_;
  asio::ip::tcp::socket socket_;
  std::string peer_;
  bool closed_ = false;
  bool close_after_flush_ = false;
  std::string close_reason_;

  // Output queue and the writer's wake-ups.
  std::deque<std::vector<uint8_t>> out_;
  size_t out_bytes_ = 0;
  asio::steady_timer writer_wake_;
  asio::steady_timer reader_wake_;  // the reader waits here while out_bytes_ is too high
  // Deadlines: of the PDU being read (from its first byte) and of the login.
  asio::steady_timer pdu_deadline_;
  asio::steady_timer login_deadline_;
  bool reading_pdu_ = false;

  // Login, then the session.
  std::unique_ptr<Login> login_;
  std::shared_ptr<Session> session_;
  uint16_t cid_ = 0;
  bool nexus_gone_reported_ = false;
  uint32_t statsn_ = 0;
  bool header_digest_ = false, data_digest_ = false;
  uint32_t max_recv_data_ = 8192;  // what we accept (login default until FFP)

  // Tasks by ITT; pending write data bounded by PendingDataBudget().
  std::map<uint32_t, std::shared_ptr<ScsiTask>> tasks_;
  std::deque<std::shared_ptr<ScsiTask>> r2t_waiters_;
  uint64_t pending_bytes_ = 0;
  uint32_t next_ttt_ = 0;

  // A Text Response continued over several PDUs (C bit).
  std::vector<uint8_t> text_in_;   // request text continued by the initiator
  std::vector<uint8_t> text_out_;  // response text not sent yet
  uint32_t text_ttt_ = kReservedTag;
};

}  // namespace kelpie::iscsi
