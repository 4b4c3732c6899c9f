// A fixed set of worker threads for data-parallel loops in the CPU backend. The caller of
// ParallelFor works too, so a pool of N threads keeps N cores busy.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace specontext::cpu {

class ThreadPool {
 public:
  // num_threads counts the caller; 1 runs everything inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), each at least `grain` long (except
  // the last), and returns when all are done. Calls from different threads are serialised;
  // fn must not call ParallelFor on the same pool.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // One pool per process, one thread per CPU the process may use, for callers without their own.
  static ThreadPool& Shared();

 private:
  void WorkerLoop();
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int helpers_ = 0;          // workers the current job enlists
  int joined_ = 0;           // workers that have enlisted so far
  int pending_workers_ = 0;  // enlisted workers not finished yet
  // The current job, valid while pending_workers_ > 0 or the caller runs chunks.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t num_chunks_ = 0;
  int64_t next_chunk_ = 0;  // guarded by mutex_
};

}  // namespace specontext::cpu
