// A step's host-side inputs (tokens, positions, lengths) packed into one pinned staging buffer
// and sent to the device in one copy, next to room for the step's block tables, which are
// assembled on the device (device_block_tables.h). The device copy sits at fixed addresses, so a
// captured CUDA graph reads each new step's inputs where it read the last one's.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cpu/rope.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model/model_config.h"
#include "kv_store/kv_layout.h"

namespace specontext::cuda {

// Rows are packed decode sequences first (one row each), then prefill chunks, so decode
// attention reads rows [0, decode) and prefill attention the rest.
struct StepShape {
  int rows = 0;                    // token rows, padding included
  int decode = 0;                  // one-token sequences, padding included
  int prefill = 0;                 // sequences of several tokens
  int max_q_len = 0;               // longest prefill chunk
  int max_context = 0;             // longest decode context (its bucket for graph steps)
  int stride = 0;                  // block-table entries per sequence
  int slot_block = 0;              // first entry of elastic slot blocks (0: none; elastic_kv.h)
  int logit_rows = 0;              // LM-head rows computed, padding included
  int returned_rows = 0;           // rows of logits the caller gets
  bool per_sequence_rope = false;  // dynamic NTK: inverse frequencies differ per sequence
  std::vector<int> seq_rows;   // with per_sequence_rope: first row of each packed sequence, + end
  std::vector<int> first_row;  // per sequence in the caller's order: its first packed row
  std::vector<int> order;      // per packed sequence: its index in the caller's order
};

// Device arrays of the current step (see StepShape for their lengths).
struct StepDeviceArrays {
  const int32_t* tokens = nullptr;      // [rows]
  const int32_t* positions = nullptr;   // [rows]; -1 on padding rows (nothing is stored)
  const int32_t* token_seq = nullptr;   // [rows]: the row's sequence in packed order
  const int32_t* logit_rows = nullptr;  // [logit_rows]: rows in the caller's order
  const int32_t* seq_lens = nullptr;    // [decode]: context including the new token; 0 = pad
  const int32_t* q_start = nullptr;     // [prefill], relative to the first prefill row
  const int32_t* q_len = nullptr;       // [prefill]
  const int32_t* kv_len = nullptr;      // [prefill]
  const float* inv_freq = nullptr;      // [decode + prefill][head_dim / 2] when per sequence
  void** block_tables = nullptr;        // [layer][decode + prefill][stride]
};

class StepInputs {
 public:
  static Result<StepInputs> Create(const ModelConfig& config, int max_tokens, int max_sequences);

  // Packs a validated batch and makes room for its block tables. graph_batch > 0 pads a
  // pure-decode batch to that many sequences and its block tables to graph_context positions,
  // so equal buckets give equal shapes. per_sequence_rope (dynamic NTK) stores each sequence's
  // inverse frequencies. slot_blocks extra entries per row follow the blocks (elastic_kv.h).
  Result<StepShape> Pack(const BatchStep& batch, const KvLayout& layout, const cpu::Rope& rope,
                         bool per_sequence_rope, int graph_batch, int graph_context,
                         int slot_blocks);
  // The packed sections; the block tables are left to DeviceBlockTables::Assemble.
  Status Upload(cudaStream_t stream);

  const StepDeviceArrays& device() const { return device_; }
  void* const* LayerTable(int layer, const StepShape& shape) const {
    return device_.block_tables +
           static_cast<size_t>(layer) * (shape.decode + shape.prefill) * shape.stride;
  }
  // Changes whenever the device arrays move (graphs that read them must be dropped).
  int generation() const { return generation_; }

 private:
  Status Reserve(size_t table_entries);

  int num_layers_ = 0;
  int half_dim_ = 0;
  int max_tokens_ = 0;
  int max_sequences_ = 0;
  size_t table_offset_ = 0;    // bytes before the block tables
  size_t table_capacity_ = 0;  // entries
  PinnedBuffer host_;          // the sections before the tables
  DeviceBuffer device_buffer_;
  StepDeviceArrays device_;
  int generation_ = 0;
};

}  // namespace specontext::cuda
