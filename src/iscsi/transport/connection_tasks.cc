// The SCSI task flow of a connection: commands in, write data gathered (R2T with a bounded
// pending-data budget), execution on the LU, Data-In/status out, failures and aborts.
#include <spdlog/spdlog.h>

#include "iscsi/scsi/sense.h"
#include "iscsi/transport/connection.h"
#include "iscsi/transport/target_server.h"

namespace kelpie::iscsi {

namespace {

constexpr uint32_t kMaxWriteLength = 64u << 20;  // one command's EDTL for data-out
constexpr uint8_t kInquiry = 0x12, kReportLuns = 0xa0;

// Standard INQUIRY data for a LUN without an LU: peripheral qualifier 3, no device type.
scsi::ScsiResult NoLuInquiry(uint32_t alloc) {
  scsi::ScsiResult r;
  r.data_in.assign(36, 0);
  r.data_in[0] = 0x7f;
  r.data_in[2] = 0x06;
  r.data_in[3] = 0x12;
  r.data_in[4] = 31;
  if (r.data_in.size() > alloc) r.data_in.resize(alloc);
  r.scsi_length = uint32_t(r.data_in.size());
  return r;
}

}  // namespace

void Connection::OnScsiCommand(const Pdu& pdu) {
  const uint32_t cmdsn = pdu.u32(off::kCmdSn);
  if (!pdu.immediate() && session_->TakeAbortedBeforeArrival(cmdsn)) {
    spdlog::debug("iscsi {}: CmdSN {} was aborted before it arrived: dropped", peer_, cmdsn);
    return;
  }
  std::string error;
  auto task = std::make_shared<ScsiTask>(pdu, session_->params(), &error);
  if (!error.empty()) {
    spdlog::warn("iscsi {}: SCSI command ITT {:#x} rejected: {}", peer_, pdu.itt(), error);
    SendReject(pdu, reject::kInvalidPduField);
    return;
  }
  if (tasks_.count(task->itt)) {
    spdlog::warn("iscsi {}: SCSI command reuses the ITT {:#x} of a running task: rejected", peer_,
                 task->itt);
    SendReject(pdu, reject::kTaskInProgress);
    return;
  }
  tasks_[task->itt] = task;
  if (!task->immediate) session_->CommandStarted();
  task->budget = task->received();
  pending_bytes_ += task->budget;
  if (task->write && task->edtl > kMaxWriteLength) {
    FailTask(task, scsi::sense::kIllegalRequest, 0x24, 0x00,
             fmt::format("write of {} bytes over the {} byte limit", task->edtl, kMaxWriteLength));
    return;
  }
  Continue(task);
}

void Connection::Continue(const std::shared_ptr<ScsiTask>& task) {
  if (task->DataComplete() && !task->WantsR2T()) {
    Execute(task);
  } else {
    SolicitData(task);
  }
}

uint64_t Connection::PendingDataBudget() const {
  return uint64_t(server_.config().login.cmdsn_window) * session_->params().max_burst_length;
}

uint32_t Connection::NextTtt() {
  if (++next_ttt_ == kReservedTag) next_ttt_ = 1;
  return next_ttt_;
}

void Connection::SolicitData(const std::shared_ptr<ScsiTask>& task) {
  while (task->WantsR2T()) {
    const uint32_t len = task->PendingR2TLength();
    const uint64_t others = pending_bytes_ - task->budget;
    if (others > 0 && pending_bytes_ + len > PendingDataBudget()) {
      if (!task->waiting_for_budget) {
        task->waiting_for_budget = true;
        r2t_waiters_.push_back(task);
      }
      return;
    }
    auto r2t = task->NextR2T(NextTtt());
    pending_bytes_ += len;
    task->budget += len;
    Send(std::move(*r2t), StatSnUse::kCurrent);
  }
}

void Connection::PumpR2TWaiters() {
  for (size_t n = r2t_waiters_.size(); n > 0 && !r2t_waiters_.empty(); --n) {
    auto task = std::move(r2t_waiters_.front());
    r2t_waiters_.pop_front();
    task->waiting_for_budget = false;
    auto it = tasks_.find(task->itt);
    if (task->aborted || it == tasks_.end() || it->second != task) continue;
    SolicitData(task);
    if (task->waiting_for_budget) break;
  }
}

void Connection::OnDataOut(const Pdu& pdu) {
  auto it = tasks_.find(pdu.itt());
  if (it == tasks_.end() || it->second->executing) {
    spdlog::debug("iscsi {}: Data-Out for no waiting task (ITT {:#x}): dropped", peer_, pdu.itt());
    return;
  }
  auto task = it->second;
  std::string error;
  const ScsiTask::DataVerdict v = task->AcceptDataOut(pdu, &error);
  if (v == ScsiTask::DataVerdict::kError) {
    FailTask(task, scsi::sense::kAbortedCommand, 0x4b, 0x00, error);  // DATA PHASE ERROR
    return;
  }
  if (pdu.u32(off::kTtt) == kReservedTag) {  // unsolicited data was not reserved by an R2T
    pending_bytes_ += pdu.data.size();
    task->budget += pdu.data.size();
  }
  if (v == ScsiTask::DataVerdict::kComplete) {
    Execute(task);
  } else {
    SolicitData(task);
  }
}

void Connection::Execute(const std::shared_ptr<ScsiTask>& task) {
  task->executing = true;
  scsi::ScsiCommand cmd;
  cmd.lun = task->lun;
  cmd.cdb = task->cdb;
  cmd.edtl = task->edtl;
  cmd.read = task->read;
  cmd.write = task->write;
  if (task->write) cmd.data_out = task->TakeDataOut();
  cmd.nexus = session_->nexus();
  const uint8_t opcode = task->cdb.empty() ? 0 : task->cdb[0];
  if (task->lun != 0 && opcode != kReportLuns) {
    if (opcode == kInquiry && !(task->cdb[1] & 0x01)) {
      OnTaskDone(task, NoLuInquiry(GetBe16(&task->cdb[3])));
    } else {
      OnTaskDone(task, scsi::CheckCondition(scsi::sense::kLunNotSupported));
    }
    return;
  }
  std::weak_ptr<Connection> weak = weak_from_this();
  auto executor = socket_.get_executor();
  const uint64_t bytes_out = cmd.data_out.size();
  auto done = [weak, executor, task, stats = server_.config().stats, bytes_out,
               start = std::chrono::steady_clock::now()](scsi::ScsiResult result) {
    if (stats) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      stats->CommandDone(task->read, task->write, task->read ? result.data_in.size() : bytes_out,
                         took.count());
    }
    asio::post(executor, [weak, task, result = std::move(result)]() mutable {
      if (auto self = weak.lock()) self->OnTaskDone(task, std::move(result));
    });
  };
  session_->lu()->Execute(std::move(cmd), std::move(done));
}

void Connection::OnTaskDone(const std::shared_ptr<ScsiTask>& task, scsi::ScsiResult result) {
  spdlog::trace("iscsi {}: ITT {:#x} CDB {:#04x} done: status {:#x}, {} data-in bytes{}", peer_,
                task->itt, task->cdb[0], result.status, result.data_in.size(),
                task->aborted ? " (aborted)" : "");
  if (closed_ || task->aborted) return;
  FinishTask(task);  // first, so the status carries the window it opens
  for (Pdu& p : task->BuildResponse(result)) {
    const bool carries_status = p.opcode() == op::kScsiResponse || (p.flags() & flag::kStatus);
    Send(std::move(p), carries_status ? StatSnUse::kAdvance : StatSnUse::kNone);
  }
  PumpR2TWaiters();
}

void Connection::FinishTask(const std::shared_ptr<ScsiTask>& task) {
  auto it = tasks_.find(task->itt);
  if (it != tasks_.end() && it->second == task) {
    tasks_.erase(it);
    if (!task->immediate) session_->CommandFinished();
  }
  pending_bytes_ -= task->budget;
  task->budget = 0;
}

void Connection::FailTask(const std::shared_ptr<ScsiTask>& task, uint8_t key, uint8_t asc,
                          uint8_t ascq, const std::string& why) {
  spdlog::warn("iscsi {}: task ITT {:#x} (CmdSN {}) failed: {}", peer_, task->itt, task->cmdsn,
               why);
  FinishTask(task);
  task->aborted = true;
  for (Pdu& p : task->BuildCheckCondition(key, asc, ascq)) Send(std::move(p), StatSnUse::kAdvance);
  PumpR2TWaiters();
}

void Connection::AbortTask(const std::shared_ptr<ScsiTask>& task) {
  task->aborted = true;
  FinishTask(task);
}

void Connection::AbortAllTasks() {
  auto tasks = std::move(tasks_);
  tasks_.clear();
  for (auto& [itt, task] : tasks) {
    task->aborted = true;
    if (!task->immediate && session_) session_->CommandFinished();
    pending_bytes_ -= task->budget;
    task->budget = 0;
  }
  r2t_waiters_.clear();
}

}  // namespace kelpie::iscsi
