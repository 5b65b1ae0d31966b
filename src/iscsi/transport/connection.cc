#include "iscsi/transport/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>

#include "iscsi/transport/target_server.h"

namespace kelpie::iscsi {

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kMaxQueuedOutput = 64u << 20;  // reader pauses above this many unsent bytes

// Task management functions and responses (RFC 7143 §11.5, §11.6).
namespace tmf {
constexpr uint8_t kAbortTask = 1, kAbortTaskSet = 2, kClearAca = 3, kClearTaskSet = 4,
                  kLunReset = 5, kTargetWarmReset = 6, kTargetColdReset = 7, kTaskReassign = 8;
constexpr uint8_t kComplete = 0, kNoSuchTask = 1, kNoSuchLun = 2, kNotSupported = 5,
                  kRejected = 255;
}  // namespace tmf

}  // namespace

Connection::Connection(TargetServer& server, asio::ip::tcp::socket socket)
    : server_(server),
      socket_(std::move(socket)),
      writer_wake_(socket_.get_executor()),
      reader_wake_(socket_.get_executor()),
      pdu_deadline_(socket_.get_executor()),
      login_deadline_(socket_.get_executor()) {
  asio::error_code ec;
  const auto remote = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown peer" : fmt::format("{}:{}", remote.address().to_string(), remote.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.set_option(asio::socket_base::keep_alive(true), ec);  // notices vanished peers
  login_ = std::make_unique<Login>(server_.config().login);
}

Connection::~Connection() = default;

void Connection::Start() {
  auto self = shared_from_this();
  // A failure inside a loop (a bug, out of memory) ends this connection, never the daemon.
  auto on_exit = [self](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      self->Close(fmt::format("internal error: {}", ex.what()));
    } catch (...) {
      self->Close("internal error");
    }
  };
  // A connection that does not complete its login in time is dropped (idle or slow peers).
  const int login_limit = server_.config().login_timeout_s;
  login_deadline_.expires_after(std::chrono::seconds(login_limit));
  login_deadline_.async_wait([weak = weak_from_this(), login_limit](asio::error_code ec) {
    auto c = weak.lock();
    if (ec || !c || c->session_) return;
    c->Close(fmt::format("login not complete within {} s", login_limit));
  });
  asio::co_spawn(
      socket_.get_executor(), [self]() { return self->ReadLoop(); }, on_exit);
  asio::co_spawn(
      socket_.get_executor(), [self]() { return self->WriteLoop(); }, on_exit);
}

void Connection::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  spdlog::info("iscsi {}: connection closed: {}", peer_, why);
  AbortAllTasks();
  asio::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  writer_wake_.cancel();
  reader_wake_.cancel();
  pdu_deadline_.cancel();
  login_deadline_.cancel();
  if (session_) {
    server_.SessionEnded(session_.get());
    if (!session_->id().discovery && !session_->nexus_handed_over && !nexus_gone_reported_) {
      nexus_gone_reported_ = true;
      auto lu = session_->lu();
      auto nexus = session_->nexus();
      asio::post(server_.blocking_pool(), [lu, nexus] {
        try {
          lu->NexusGone(nexus);
        } catch (const std::exception& e) {
          spdlog::warn("iscsi: NexusGone({}) failed: {}", nexus.Id(), e.what());
        }
      });
    }
  }
  server_.ConnectionEnded(this);
}

void Connection::CloseAfterFlush(const std::string& why) {
  close_after_flush_ = true;
  close_reason_ = why;
  writer_wake_.cancel();
}

asio::awaitable<void> Connection::RunBlocking(std::function<void()> fn) {
  auto job = [fn]() -> asio::awaitable<void> {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::warn("iscsi: blocking call failed: {}", e.what());
    }
    co_return;
  };
  co_await asio::co_spawn(server_.blocking_pool(), std::move(job), asio::use_awaitable);
}

// ---------------------------------------------------------------------------------------------
// Reading and writing PDUs.

asio::awaitable<PduReadResult> Connection::ReadPdu(Pdu& pdu) {
  // The PDU is due within the PDU timeout of its first byte, else the connection is closed.
  const int limit = server_.config().pdu_timeout_s;
  auto begun = [this, limit] {
    reading_pdu_ = true;
    pdu_deadline_.expires_after(std::chrono::seconds(limit));
    pdu_deadline_.async_wait([weak = weak_from_this(), limit](asio::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || !self->reading_pdu_) return;
      self->Close(fmt::format("PDU not complete within {} s", limit));
    });
  };
  PduReadResult r =
      co_await ReadPduFrom(socket_, pdu, {header_digest_, data_digest_, max_recv_data_}, begun);
  reading_pdu_ = false;
  pdu_deadline_.cancel();
  co_return r;
}

asio::awaitable<void> Connection::ReadLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    while (out_bytes_ > kMaxQueuedOutput && !closed_) {
      reader_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await reader_wake_.async_wait(kTuple);
    }
    if (closed_) break;
    Pdu pdu;
    const PduReadResult r = co_await ReadPdu(pdu);
    if (closed_) break;
    if (!r.ok) {
      Close(r.why);
      break;
    }
    if (!session_) {
      co_await HandleLoginPdu(std::move(pdu));
    } else {
      co_await HandlePdu(std::move(pdu), r.data_digest_ok);
    }
  }
}

asio::awaitable<void> Connection::WriteLoop() {
  auto self = shared_from_this();
  std::vector<std::vector<uint8_t>> batch;
  std::vector<asio::const_buffer> bufs;
  while (!closed_) {
    if (out_.empty()) {
      if (close_after_flush_) {
        Close(close_reason_);
        break;
      }
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await writer_wake_.async_wait(kTuple);
      continue;
    }
    batch.clear();
    bufs.clear();
    size_t bytes = 0;
    while (!out_.empty() && batch.size() < 64 && bytes < (4u << 20)) {
      bytes += out_.front().size();
      batch.push_back(std::move(out_.front()));
      out_.pop_front();
    }
    for (const auto& b : batch) bufs.push_back(asio::buffer(b));
    auto [ec, n] = co_await asio::async_write(socket_, bufs, kTuple);
    out_bytes_ -= bytes;
    if (out_bytes_ <= kMaxQueuedOutput) reader_wake_.cancel();
    if (ec) {
      Close(fmt::format("write failed: {}", ec.message()));
      break;
    }
  }
}

void Connection::Send(Pdu pdu, StatSnUse statsn) {
  if (closed_) return;
  if (statsn == StatSnUse::kAdvance) {
    pdu.set_u32(off::kStatSn, statsn_++);
  } else if (statsn == StatSnUse::kCurrent) {
    pdu.set_u32(off::kStatSn, statsn_);
  }
  if (session_) {
    pdu.set_u32(off::kExpCmdSn, session_->exp_cmdsn());
    pdu.set_u32(off::kMaxCmdSn, session_->max_cmdsn());
  }
  auto bytes = EncodePdu(pdu, header_digest_, data_digest_);
  out_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  writer_wake_.cancel();
}

void Connection::SendReject(const Pdu& rejected, uint8_t reason) {
  Pdu r = Pdu::Make(op::kReject, flag::kFinal, kReservedTag);
  r.set_u8(2, reason);
  r.set_data(std::vector<uint8_t>(rejected.bhs.begin(), rejected.bhs.end()));
  Send(std::move(r), StatSnUse::kAdvance);
}

// ---------------------------------------------------------------------------------------------
// Login.

asio::awaitable<void> Connection::HandleLoginPdu(Pdu pdu) {
  if (pdu.opcode() != op::kLoginRequest) {
    Close(fmt::format("{} before login completed", OpcodeName(pdu.opcode())));
    co_return;
  }
  // The first request names the target: open it off the I/O thread if it is not known yet.
  const auto keys = ParseTextKeys(pdu.data);
  const auto target = keys ? FindKey(*keys, "TargetName") : std::nullopt;
  if (target && !server_.FindTarget(*target)) {
    const std::string name = *target;
    TargetServer* server = &server_;
    std::function<void()> resolve = [server, name] { server->ResolveTarget(name); };
    co_await RunBlocking(std::move(resolve));
    if (closed_) co_return;
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    std::string text(pdu.data.begin(), pdu.data.end());
    std::replace(text.begin(), text.end(), '\0', ' ');
    spdlog::debug("iscsi {}: login request flags {:#04x}: {}", peer_, pdu.flags(), text);
  }
  Login::Step step = login_->Process(pdu);
  switch (step.kind) {
    case Login::Step::Kind::kReply:
      Send(std::move(step.response), StatSnUse::kNone);
      break;
    case Login::Step::Kind::kFail:
      spdlog::warn("iscsi {}: login failed (status {:#06x}): {}", peer_,
                   uint16_t(step.response.bhs[36] << 8 | step.response.bhs[37]), step.why);
      Send(std::move(step.response), StatSnUse::kNone);
      CloseAfterFlush("login failed");
      break;
    case Login::Step::Kind::kComplete:
      co_await CompleteLogin();
      break;
  }
}

asio::awaitable<void> Connection::CompleteLogin() {
  std::shared_ptr<scsi::LogicalUnit> lu;
  if (!login_->discovery()) lu = server_.FindTarget(login_->target_name());
  TargetServer::Admission adm = server_.AdmitSession(*login_, lu);
  if (!adm.session) {
    spdlog::warn("iscsi {}: login of {} failed (status {:#06x}): {}", peer_,
                 login_->initiator_name(), adm.status, adm.why);
    Send(login_->FailResponse(adm.status), StatSnUse::kNone);
    CloseAfterFlush("login failed");
    co_return;
  }
  auto session = adm.session;
  std::weak_ptr<Connection> weak = weak_from_this();
  session->set_closer([weak](const std::string& why) {
    if (auto c = weak.lock()) c->Close(why);
  });
  session->set_task_aborter([weak] {
    if (auto c = weak.lock()) c->AbortAllTasks();
  });
  if (!login_->discovery()) {
    const scsi::Nexus nexus = session->nexus();
    const bool reinstated = adm.reinstated;
    std::function<void()> login_nexus = [lu, nexus, reinstated] {
      if (reinstated) lu->NexusGone(nexus);
      lu->NexusLogin(nexus);
    };
    co_await RunBlocking(std::move(login_nexus));
    if (closed_) {  // the connection ended while the nexus logged in: it is gone again
      server_.SessionEnded(session.get());
      if (!session->nexus_handed_over) {
        std::function<void()> gone = [lu, nexus] { lu->NexusGone(nexus); };
        co_await RunBlocking(std::move(gone));
      }
      co_return;
    }
  }
  session_ = session;
  login_deadline_.cancel();
  cid_ = login_->cid();
  Send(login_->FinalResponse(session->id().tsih), StatSnUse::kNone);
  statsn_ = login_->next_statsn();
  header_digest_ = session->params().header_digest;
  data_digest_ = session->params().data_digest;
  max_recv_data_ = session->params().target_mrdsl;
  spdlog::info("iscsi {}: {} logged in to {} (ISID {}, TSIH {}{}{}{})", peer_,
               session->id().initiator_name,
               session->id().discovery ? "discovery" : session->id().target_name,
               session->id().isid, session->id().tsih, header_digest_ ? ", header CRC32C" : "",
               data_digest_ ? ", data CRC32C" : "", adm.reinstated ? ", reinstated" : "");
  login_.reset();
}

// ---------------------------------------------------------------------------------------------
// Full feature phase.

asio::awaitable<void> Connection::HandlePdu(Pdu pdu, bool data_digest_ok) {
  const uint8_t opcode = pdu.opcode();
  spdlog::trace("iscsi {}: {}{} ITT {:#x} CmdSN {} (ExpCmdSN {}, MaxCmdSN {}) DSL {}", peer_,
                OpcodeName(opcode), pdu.immediate() ? " (immediate)" : "", pdu.itt(),
                pdu.u32(off::kCmdSn), session_->exp_cmdsn(), session_->max_cmdsn(),
                pdu.data.size());
  if (!data_digest_ok) {
    spdlog::warn("iscsi {}: data digest error on {} (ITT {:#x}): rejected", peer_,
                 OpcodeName(opcode), pdu.itt());
    SendReject(pdu, reject::kDataDigestError);
    if (opcode == op::kDataOut) {
      auto it = tasks_.find(pdu.itt());
      if (it != tasks_.end() && !it->second->executing) AbortTask(it->second);
    } else if (!pdu.immediate() && opcode != op::kSnack) {
      // The command is not executed, but its CmdSN is consumed so later ones still run.
      if (session_->Admit(pdu) == Session::Admission::kNow) {
        while (auto next = session_->TakeReady()) co_await Dispatch(std::move(*next));
      }
    }
    co_return;
  }
  switch (opcode) {
    case op::kDataOut:
      OnDataOut(pdu);
      co_return;
    case op::kNopOut:
    case op::kScsiCommand:
    case op::kTaskMgmtRequest:
    case op::kTextRequest:
    case op::kLogoutRequest:
      break;
    case op::kSnack:
      spdlog::warn("iscsi {}: SNACK at ErrorRecoveryLevel 0: rejected", peer_);
      SendReject(pdu, reject::kProtocolError);
      co_return;
    case op::kLoginRequest:
      spdlog::warn("iscsi {}: Login Request in full feature phase: rejected", peer_);
      SendReject(pdu, reject::kProtocolError);
      co_return;
    default:
      spdlog::warn("iscsi {}: unsupported {}: rejected", peer_, OpcodeName(opcode));
      SendReject(pdu, reject::kCommandNotSupported);
      co_return;
  }
  const bool ping_answer = opcode == op::kNopOut && pdu.itt() == kReservedTag;
  if (pdu.immediate() || ping_answer) {
    co_await Dispatch(std::move(pdu));
    co_return;
  }
  switch (session_->Admit(pdu)) {
    case Session::Admission::kDropped:
      spdlog::info("iscsi {}: {} with CmdSN {} outside [{}, {}]: dropped", peer_,
                   OpcodeName(opcode), pdu.u32(off::kCmdSn), session_->exp_cmdsn(),
                   session_->max_cmdsn());
      co_return;
    case Session::Admission::kHeld:
      co_return;
    case Session::Admission::kNow:
      break;
  }
  co_await Dispatch(std::move(pdu));
  while (!closed_) {
    auto next = session_->TakeReady();
    if (!next) break;
    co_await Dispatch(std::move(*next));
  }
}

asio::awaitable<void> Connection::Dispatch(Pdu pdu) {
  if (closed_) co_return;
  const bool discovery = session_->id().discovery;
  switch (pdu.opcode()) {
    case op::kScsiCommand:
      if (discovery) {
        spdlog::warn("iscsi {}: SCSI command in a discovery session: rejected", peer_);
        SendReject(pdu, reject::kProtocolError);
      } else {
        OnScsiCommand(pdu);
      }
      break;
    case op::kNopOut:
      OnNopOut(pdu);
      break;
    case op::kTaskMgmtRequest:
      if (discovery) {
        spdlog::warn("iscsi {}: task management in a discovery session: rejected", peer_);
        SendReject(pdu, reject::kProtocolError);
      } else {
        co_await OnTaskManagement(std::move(pdu));
      }
      break;
    case op::kTextRequest:
      co_await OnText(std::move(pdu));
      break;
    case op::kLogoutRequest:
      co_await OnLogout(std::move(pdu));
      break;
    default:
      break;
  }
}

void Connection::OnNopOut(const Pdu& pdu) {
  if (pdu.itt() == kReservedTag) return;  // an answer to a NOP-In, or a one-way ping
  Pdu r = Pdu::Make(op::kNopIn, flag::kFinal, pdu.itt());
  r.set_lun(pdu.lun());
  r.set_u32(off::kTtt, kReservedTag);
  std::vector<uint8_t> echo = pdu.data;
  if (echo.size() > session_->params().initiator_mrdsl)
    echo.resize(session_->params().initiator_mrdsl);
  r.set_data(std::move(echo));
  Send(std::move(r), StatSnUse::kAdvance);
}

// ---------------------------------------------------------------------------------------------
// Task management, Text, Logout.

asio::awaitable<void> Connection::OnTaskManagement(Pdu pdu) {
  const uint8_t function = pdu.flags() & 0x7f;
  const uint32_t ref_itt = pdu.u32(20);
  const uint32_t ref_cmdsn = pdu.u32(32);
  const uint64_t lun = DecodeLun(pdu.lun());
  auto lu = session_->lu();
  const scsi::Nexus nexus = session_->nexus();
  uint8_t response = tmf::kComplete;
  bool close_target_sessions = false;
  switch (function) {
    case tmf::kAbortTask: {
      auto it = tasks_.find(ref_itt);
      if (it != tasks_.end()) {
        spdlog::info("iscsi {}: ABORT TASK ITT {:#x} (CmdSN {})", peer_, ref_itt,
                     it->second->cmdsn);
        AbortTask(it->second);
        PumpR2TWaiters();
      } else if (!session_->RecordAbortOfUnreceived(ref_cmdsn)) {
        response = tmf::kNoSuchTask;
      }
      break;
    }
    case tmf::kAbortTaskSet:
    case tmf::kClearTaskSet:
      spdlog::info("iscsi {}: {} ({} tasks)", peer_,
                   function == tmf::kAbortTaskSet ? "ABORT TASK SET" : "CLEAR TASK SET",
                   tasks_.size());
      AbortAllTasks();
      break;
    case tmf::kLunReset:
    case tmf::kTargetWarmReset:
    case tmf::kTargetColdReset: {
      if (function == tmf::kLunReset && lun != 0) {
        response = tmf::kNoSuchLun;
        break;
      }
      const scsi::LuReset what = function == tmf::kLunReset ? scsi::LuReset::kLogicalUnitReset
                                 : function == tmf::kTargetWarmReset
                                     ? scsi::LuReset::kTargetWarmReset
                                     : scsi::LuReset::kTargetColdReset;
      spdlog::info("iscsi {}: {} requested by {}", peer_,
                   function == tmf::kLunReset          ? "LOGICAL UNIT RESET"
                   : function == tmf::kTargetWarmReset ? "TARGET WARM RESET"
                                                       : "TARGET COLD RESET",
                   nexus.Id());
      for (auto& s : server_.SessionsOf(lu.get())) s->AbortAllTasks();
      AbortAllTasks();
      uint8_t code = tmf::kRejected;
      std::function<void()> reset = [lu, what, nexus, &code] { code = lu->Reset(what, nexus); };
      co_await RunBlocking(std::move(reset));
      response = code;
      close_target_sessions = function == tmf::kTargetColdReset && code == tmf::kComplete;
      break;
    }
    case tmf::kClearAca:
    case tmf::kTaskReassign:
      response = tmf::kNotSupported;
      break;
    default:
      spdlog::warn("iscsi {}: unknown task management function {}", peer_, function);
      response = tmf::kRejected;
      break;
  }
  Pdu r = Pdu::Make(op::kTaskMgmtResponse, flag::kFinal, pdu.itt());
  r.set_u8(2, response);
  Send(std::move(r), StatSnUse::kAdvance);
  if (close_target_sessions) {
    for (auto& s : server_.SessionsOf(lu.get()))
      if (s != session_) s->Close("target cold reset");
    CloseAfterFlush("target cold reset");
  }
}

void Connection::SendTextChunk(uint32_t itt) {
  const uint32_t limit = session_->params().initiator_mrdsl;
  const size_t n = std::min<size_t>(text_out_.size(), limit);
  const bool more = n < text_out_.size();
  Pdu r = Pdu::Make(op::kTextResponse, more ? flag::kContinue : flag::kFinal, itt);
  if (more) text_ttt_ = NextTtt();
  r.set_u32(off::kTtt, more ? text_ttt_ : kReservedTag);
  r.set_data(std::vector<uint8_t>(text_out_.begin(), text_out_.begin() + n));
  text_out_.erase(text_out_.begin(), text_out_.begin() + n);
  if (!more) text_ttt_ = kReservedTag;
  Send(std::move(r), StatSnUse::kAdvance);
}

asio::awaitable<void> Connection::OnText(Pdu pdu) {
  const uint32_t ttt = pdu.u32(off::kTtt);
  if (ttt != kReservedTag && ttt == text_ttt_ && !text_out_.empty()) {
    SendTextChunk(pdu.itt());  // the initiator asks for the rest of a long response
    co_return;
  }
  text_out_.clear();
  text_ttt_ = kReservedTag;
  text_in_.insert(text_in_.end(), pdu.data.begin(), pdu.data.end());
  if (text_in_.size() > 65536) {
    text_in_.clear();
    spdlog::warn("iscsi {}: Text Request key text over 64 KiB: rejected", peer_);
    SendReject(pdu, reject::kProtocolError);
    co_return;
  }
  if (pdu.flags() & flag::kContinue) {  // more request text follows
    Pdu r = Pdu::Make(op::kTextResponse, 0, pdu.itt());
    text_ttt_ = NextTtt();
    r.set_u32(off::kTtt, text_ttt_);
    Send(std::move(r), StatSnUse::kAdvance);
    co_return;
  }
  const auto keys = ParseTextKeys(text_in_);
  text_in_.clear();
  if (!keys) {
    spdlog::warn("iscsi {}: malformed Text Request key text: rejected", peer_);
    SendReject(pdu, reject::kProtocolError);
    co_return;
  }
  KeyValues reply;
  Negotiator negotiator(server_.config().login.limits);
  for (const auto& [key, value] : *keys) {
    if (key == "SendTargets") {
      if (value == "All") {
        TargetServer* server = &server_;
        std::function<void()> refresh = [server] { server->RefreshTargets(); };
        co_await RunBlocking(std::move(refresh));
        if (closed_) co_return;
      }
      asio::error_code ec;
      const auto local = socket_.local_endpoint(ec);
      const KeyValues targets = server_.SendTargets(value, session_->id().target_name, local);
      reply.insert(reply.end(), targets.begin(), targets.end());
      continue;
    }
    auto answer =
        negotiator.Offer(key, value, NegotiationPhase::kFullFeature, session_->id().discovery);
    if (key == "MaxRecvDataSegmentLength" && answer.value != kReject)
      session_->mutable_params().initiator_mrdsl = negotiator.params().initiator_mrdsl;
    if (answer.value) reply.emplace_back(key, *answer.value);
  }
  text_out_ = SerializeTextKeys(reply);
  SendTextChunk(pdu.itt());
}

asio::awaitable<void> Connection::OnLogout(Pdu pdu) {
  const uint8_t reason = pdu.flags() & 0x7f;
  const uint16_t cid = pdu.u16(20);
  uint8_t response = 0;
  if (reason == 2) {
    response = 2;  // connection recovery is not supported at ErrorRecoveryLevel 0
  } else if (reason == 1 && cid != cid_) {
    response = 1;  // CID not found
  } else if (reason > 2) {
    spdlog::warn("iscsi {}: Logout reason {} unknown: rejected", peer_, reason);
    SendReject(pdu, reject::kInvalidPduField);
    co_return;
  }
  if (response == 0) {
    AbortAllTasks();
    server_.SessionEnded(session_.get());
    if (!session_->id().discovery && !session_->nexus_handed_over && !nexus_gone_reported_) {
      nexus_gone_reported_ = true;
      auto lu = session_->lu();
      const scsi::Nexus nexus = session_->nexus();
      std::function<void()> gone = [lu, nexus] { lu->NexusGone(nexus); };
      co_await RunBlocking(std::move(gone));
    }
  }
  Pdu r = Pdu::Make(op::kLogoutResponse, flag::kFinal, pdu.itt());
  r.set_u8(2, response);
  Send(std::move(r), StatSnUse::kAdvance);
  if (response == 0) CloseAfterFlush(fmt::format("logout (reason {})", reason));
}

}  // namespace kelpie::iscsi
