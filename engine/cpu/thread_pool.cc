#include "engine/cpu/thread_pool.h"

#include <algorithm>

#include "common/usable_cpus.h"

namespace specontext::cpu {

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

ThreadPool& ThreadPool::Shared() {
  static ThreadPool pool(UsableCpus());
  return pool;
}

void ThreadPool::RunChunks() {
  for (;;) {
    int64_t chunk;
    {
      std::lock_guard lock(mutex_);
      if (next_chunk_ >= num_chunks_) return;
      chunk = next_chunk_++;
    }
    const int64_t begin = chunk * chunk_;
    (*fn_)(begin, std::min(n_, begin + chunk_));
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // Small jobs enlist only as many helpers as they have chunks; the rest sleep on.
      if (joined_ == helpers_) continue;
      ++joined_;
    }
    RunChunks();
    std::lock_guard lock(mutex_);
    if (--pending_workers_ == 0) done_.notify_one();
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard call_lock(call_mutex_);
  {
    std::lock_guard lock(mutex_);
    // A few chunks per thread balance uneven rows without much locking.
    const int64_t target_chunks = 4 * static_cast<int64_t>(num_threads());
    chunk_ = std::max(grain, (n + target_chunks - 1) / target_chunks);
    num_chunks_ = (n + chunk_ - 1) / chunk_;
    next_chunk_ = 0;
    n_ = n;
    fn_ = &fn;
    // The caller returns only after every enlisted helper has finished, so none can still be
    // running this job's chunks when the next one starts.
    helpers_ = static_cast<int>(std::min<int64_t>(workers_.size(), num_chunks_ - 1));
    joined_ = 0;
    pending_workers_ = helpers_;
    ++generation_;
  }
  if (helpers_ > 0) wake_.notify_all();
  RunChunks();
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return pending_workers_ == 0; });
  fn_ = nullptr;
}

}  // namespace specontext::cpu
