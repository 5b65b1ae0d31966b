// GroupCommit: makes writes durable in shared batches, so concurrent writers pay for one sync
// between them instead of one each.
//
// A writer first puts its bytes in the page cache (pwrite), then hands the files it touched to
// Submit together with a completion, and is acknowledged only from that completion. One
// committer thread takes everything submitted so far as a batch, makes it durable (one
// fdatasync per distinct file, issued in parallel so the filesystem folds them into shared
// journal commits; one syncfs for a huge batch), then runs the batch's completions. Writers
// that submit while a batch syncs form the next batch. Objects are spread over a few such
// committers (lanes, by oid), so one slow batch does not hold up every other object's writes;
// all writes of one object go through the same lane. Nobody holds an object's lock while
// waiting: a later writer of the same object applies its bytes and joins the next batch.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace kelpie::store {

class GroupCommit {
 public:
  // Called with a proto::res code: kSuccess once durable, kEio / kNoSpace if the sync failed.
  using Done = std::function<void(uint32_t)>;

  // A batch touching more than `syncfs_over` distinct files is synced with one syncfs.
  explicit GroupCommit(size_t lanes = 4, size_t syncfs_over = 256);
  ~GroupCommit();  // drains what was submitted, then stops the committer
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues the files of one write of object `oid` (open descriptors, kept open by `keep` until
  // synced). `done` runs on the committer thread.
  void Submit(uint64_t oid, std::vector<int> fds, std::shared_ptr<void> keep, Done done);

  // Submits and blocks until durable; returns the result.
  uint32_t SubmitAndWait(uint64_t oid, std::vector<int> fds, std::shared_ptr<void> keep);

  // Batches synced so far and writes they carried (for tests and benchmarks).
  uint64_t batches() const;
  uint64_t writes() const;

 private:
  struct Entry {
    uint64_t oid;
    std::vector<int> fds;
    std::shared_ptr<void> keep;
    Done done;
  };
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Entry> queue;
    bool stop = false;
    uint64_t batches = 0, writes = 0;
    std::thread committer;
  };
  void Run(Lane& lane);
  uint32_t SyncBatch(const std::vector<Entry>& batch);

  const size_t syncfs_over_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace kelpie::store
