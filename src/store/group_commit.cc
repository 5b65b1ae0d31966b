#include "store/group_commit.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "proto/constants.h"

namespace kelpie::store {

namespace res = proto::res;

GroupCommit::GroupCommit(size_t lanes, size_t syncfs_over) : syncfs_over_(syncfs_over) {
  for (size_t i = 0; i < std::max<size_t>(lanes, 1); ++i) {
    auto lane = std::make_unique<Lane>();
    lane->committer = std::thread([this, l = lane.get()] { Run(*l); });
    lanes_.push_back(std::move(lane));
  }
}

GroupCommit::~GroupCommit() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard lk(lane->mu);
      lane->stop = true;
    }
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) lane->committer.join();
}

void GroupCommit::Submit(uint64_t oid, std::vector<int> fds, std::shared_ptr<void> keep,
                         Done done) {
  Lane& lane = *lanes_[(oid ^ (oid >> 32)) % lanes_.size()];
  {
    std::lock_guard lk(lane.mu);
    lane.queue.push_back(Entry{oid, std::move(fds), std::move(keep), std::move(done)});
  }
  lane.cv.notify_one();
}

uint32_t GroupCommit::SubmitAndWait(uint64_t oid, std::vector<int> fds,
                                    std::shared_ptr<void> keep) {
  std::promise<uint32_t> result;
  Submit(oid, std::move(fds), std::move(keep), [&result](uint32_t rc) { result.set_value(rc); });
  return result.get_future().get();
}

uint64_t GroupCommit::batches() const {
  uint64_t n = 0;
  for (const auto& lane : lanes_) {
    std::lock_guard lk(lane->mu);
    n += lane->batches;
  }
  return n;
}

uint64_t GroupCommit::writes() const {
  uint64_t n = 0;
  for (const auto& lane : lanes_) {
    std::lock_guard lk(lane->mu);
    n += lane->writes;
  }
  return n;
}

void GroupCommit::Run(Lane& lane) {
  for (;;) {
    std::vector<Entry> batch;
    {
      std::unique_lock lk(lane.mu);
      lane.cv.wait(lk, [&lane] { return lane.stop || !lane.queue.empty(); });
      if (lane.queue.empty()) return;  // stopping, and everything is drained
      batch.swap(lane.queue);
    }
    const uint32_t rc = SyncBatch(batch);
    {
      std::lock_guard lk(lane.mu);
      ++lane.batches;
      lane.writes += batch.size();
    }
    for (auto& e : batch) e.done(rc);
  }
}

uint32_t GroupCommit::SyncBatch(const std::vector<Entry>& batch) {
  // Each file once, however many writes of the batch touched it (writes of one object share
  // its files, so the object's first entry stands for all of them).
  std::vector<uint64_t> oids;
  std::vector<int> fds;
  for (const auto& e : batch) {
    if (std::find(oids.begin(), oids.end(), e.oid) != oids.end()) continue;
    oids.push_back(e.oid);
    fds.insert(fds.end(), e.fds.begin(), e.fds.end());
  }
  auto sync = [](int fd) -> int { return ::fdatasync(fd) == 0 ? 0 : errno; };
  int err = 0;
  if (fds.size() > syncfs_over_) {
    // Very many files: one flush of the filesystem covers them all (and reports writeback
    // errors of any of them since the last syncfs).
    err = ::syncfs(fds.front()) == 0 ? 0 : errno;
  } else {
    // The files' syncs are issued together: the filesystem folds concurrent syncs into shared
    // journal commits and cache flushes, which one thread syncing file after file would not.
    std::vector<std::future<int>> pending;
    for (size_t i = 1; i < fds.size(); ++i)
      pending.push_back(std::async(std::launch::async, sync, fds[i]));
    err = fds.empty() ? 0 : sync(fds[0]);
    for (auto& p : pending) {
      const int e = p.get();
      if (err == 0) err = e;
    }
  }
  if (err != 0) {
    spdlog::error("group commit: sync of {} writes: {}", batch.size(), std::strerror(err));
    return (err == ENOSPC || err == EDQUOT) ? res::kNoSpace : res::kEio;
  }
  return res::kSuccess;
}

}  // namespace kelpie::store
