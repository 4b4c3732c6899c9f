#include "kv_store/copy_engine.h"

#include <cstring>

#ifdef SPECONTEXT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace specontext {

bool CopyTicket::Poll() const {
  if (!state_) return true;
  std::lock_guard lock(state_->mu);
  return state_->done;
}

Status CopyTicket::Wait() const {
  if (!state_) return Status::Ok();
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->done; });
  return state_->status;
}

Result<std::unique_ptr<CopyEngine>> CopyEngine::Create() {
  std::unique_ptr<CopyEngine> engine(new CopyEngine());
#ifdef SPECONTEXT_HAVE_CUDA
  if (GpuAvailable()) {
    cudaStream_t stream = nullptr;
    // Non-blocking: demotions must not serialise against the compute stream.
    if (const cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
        err != cudaSuccess) {
      cudaGetLastError();
      return Internal(std::string("cudaStreamCreate for KV copies failed: ") +
                      cudaGetErrorString(err));
    }
    engine->stream_ = stream;
  }
#endif
  engine->worker_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

CopyEngine::~CopyEngine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
#ifdef SPECONTEXT_HAVE_CUDA
  if (stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
#endif
}

CopyTicket CopyEngine::Submit(std::vector<BlockCopy> copies) {
  CopyTicket ticket;
  ticket.state_ = std::make_shared<CopyTicket::State>();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Job{std::move(copies), ticket.state_});
  }
  cv_.notify_one();
  return ticket;
}

void CopyEngine::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Status status = Execute(job.copies, stream_);
    {
      std::lock_guard lock(job.state->mu);
      job.state->status = std::move(status);
      job.state->done = true;
    }
    job.state->cv.notify_all();
  }
}

Status CopyEngine::CopyNow(std::span<const BlockCopy> copies) { return Execute(copies, nullptr); }

Status CopyEngine::Execute(std::span<const BlockCopy> copies, [[maybe_unused]] void* stream) {
  std::vector<SlotRead> reads;
  std::vector<SlotWrite> writes;
  NvmeFile* read_file = nullptr;
  NvmeFile* write_file = nullptr;
  for (const BlockCopy& c : copies) {
    if (c.src_pool == nullptr || c.dst_pool == nullptr ||
        c.src_pool->block_bytes() != c.dst_pool->block_bytes()) {
      return InvalidArgument("KV copy between pools of different block sizes");
    }
    const Tier from = c.src_pool->tier();
    const Tier to = c.dst_pool->tier();
    if ((from == Tier::kNvme) == (to == Tier::kNvme)) {
      if (from == Tier::kNvme) return InvalidArgument("KV copy from NVMe to NVMe");
      // An emulated GPU pool is host memory: a plain copy, like host to host.
      const bool device_copy = !c.src_pool->host_addressable() || !c.dst_pool->host_addressable();
      if (device_copy) {
#ifdef SPECONTEXT_HAVE_CUDA
        if (stream != nullptr) {
          if (const cudaError_t err = cudaMemcpyAsync(
                  c.dst_pool->data(c.dst), c.src_pool->data(c.src), c.src_pool->block_bytes(),
                  cudaMemcpyDefault, static_cast<cudaStream_t>(stream));
              err != cudaSuccess) {
            cudaGetLastError();
            return Internal(std::string("KV block copy failed: ") + cudaGetErrorString(err));
          }
          continue;
        }
#endif
        return FailedPrecondition("GPU KV copy without a CUDA stream");
      }
      std::memcpy(c.dst_pool->data(c.dst), c.src_pool->data(c.src), c.src_pool->block_bytes());
    } else if (from == Tier::kNvme) {
      if (to != Tier::kHost) return InvalidArgument("NVMe blocks move to host memory only");
      if (read_file != nullptr && read_file != c.src_pool->file()) {
        return InvalidArgument("one KV copy batch reads from two NVMe files");
      }
      read_file = c.src_pool->file();
      reads.push_back(SlotRead{c.src, c.dst_pool->data(c.dst)});
    } else {
      if (from != Tier::kHost) return InvalidArgument("NVMe blocks come from host memory only");
      if (write_file != nullptr && write_file != c.dst_pool->file()) {
        return InvalidArgument("one KV copy batch writes to two NVMe files");
      }
      write_file = c.dst_pool->file();
      writes.push_back(SlotWrite{c.dst, c.src_pool->data(c.src)});
    }
  }
  if (read_file != nullptr) SPC_RETURN_IF_ERROR(read_file->Read(reads));
  if (write_file != nullptr) SPC_RETURN_IF_ERROR(write_file->Write(writes));
#ifdef SPECONTEXT_HAVE_CUDA
  if (stream != nullptr) {
    if (const cudaError_t err = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
        err != cudaSuccess) {
      cudaGetLastError();
      return Internal(std::string("KV copy stream failed: ") + cudaGetErrorString(err));
    }
  }
#endif
  return Status::Ok();
}

}  // namespace specontext
