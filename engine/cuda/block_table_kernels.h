// Block tables kept on the device across steps (device_block_tables.h): each sequence's table
// lives in its own device array, updated by runs of new entries, and a step's packed tables
// ([layer][rows][stride], paged_kv.h) are assembled from those arrays on the device, so the host
// touches only what changed.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace specontext::cuda {

// values[first, first + count) go to dst[0, count).
struct TableRun {
  void** dst = nullptr;
  uint32_t first = 0;
  uint32_t count = 0;
};

// One packed row's persistent table: layer l's entries start at table + l * layer_stride, and
// the first `used` of them are the row's blocks. A padding row has used = 0.
struct RowTable {
  void* const* table = nullptr;
  int32_t layer_stride = 0;
  int32_t used = 0;
};

// Elastic loading's slot blocks of one (layer, row): `count` blocks named by the device array
// `blocks` (lent by the KV store's GPU pool, so not adjacent), placed at entries
// [slot_block, slot_block + count) of the packed row.
struct SlotRange {
  void* const* blocks = nullptr;
  int32_t count = 0;
};

Status ApplyTableRuns(const TableRun* runs, int num_runs, void* const* values, cudaStream_t stream);

struct AssembleTablesArgs {
  const RowTable* rows = nullptr;    // [num_rows]
  const SlotRange* slots = nullptr;  // [layers][num_rows], or null: no slot blocks
  void** out = nullptr;              // [layers][num_rows][stride]
  int layers = 0;
  int num_rows = 0;
  int stride = 0;
  int slot_block = 0;  // entries before it that a row does not use are null
};

// Writes every entry of `out`: the row's blocks, null up to slot_block (or the end), the row's
// slot blocks, null after them.
Status AssembleTables(const AssembleTablesArgs& args, cudaStream_t stream);

}  // namespace specontext::cuda
