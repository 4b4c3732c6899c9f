#include "server/bench_command.h"

#include <fmt/core.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/specontext/slot_map.h"
#include "engine/specontext/specontext_planner.h"
#include "kv_store/memory_manager.h"

#if SPECONTEXT_HAVE_CUDA
#include "engine/cuda/runner_bench.h"
#endif

namespace specontext::server {
namespace {

#if SPECONTEXT_HAVE_CUDA
boost::json::object ToJson(const cuda::OffloadPoint& o) {
  return {{"gpu_layers", o.gpu_layers},
          {"host_kv_bytes", o.host_kv_bytes},
          {"dense_ms", o.dense_ms},
          {"sparse_in_place_ms", o.sparse_in_place_ms},
          {"elastic_ms", o.elastic_ms},
          {"elastic_static_ms", o.elastic_static_ms},
          {"loaded_fraction", o.loaded_fraction},
          {"copied_bytes_per_step", o.copied_bytes_per_step},
          {"reload_bytes_per_step", o.reload_bytes_per_step},
          {"dense_roofline_ms", o.dense_roofline_ms},
          {"elastic_roofline_ms", o.elastic_roofline_ms}};
}

boost::json::object ToJson(const cuda::BenchReport& r, const std::string& model) {
  boost::json::array prefill, decode;
  for (const cuda::PrefillPoint& p : r.prefill) {
    prefill.push_back({{"tokens", p.tokens},
                       {"ms", p.ms},
                       {"tokens_per_s", p.tokens_per_s},
                       {"tflops", p.tflops}});
  }
  for (const cuda::DecodePoint& p : r.decode) {
    boost::json::object point{{"batch", p.batch},
                              {"context", p.context},
                              {"ran", p.ran},
                              {"bytes_per_step", p.bytes},
                              {"roofline_ms", p.roofline_ms}};
    if (p.ran) {
      point["step_ms"] = p.step_ms;
      point["whole_rows_step_ms"] = p.whole_rows_step_ms;
      point["tokens_per_s"] = p.tokens_per_s;
      point["roofline_ratio"] = p.step_ms / p.roofline_ms;
      point["gpu_memory_used"] = p.gpu_memory_used;
      if (p.offloaded) point["offload"] = ToJson(p.offload);
      point["sparse_ran"] = p.sparse_ran;
      if (p.sparse_ran) {
        point["sparse_step_ms"] = p.sparse_step_ms;
        point["select_ms"] = p.select_ms;
        point["sparse_roofline_ms"] = p.sparse_roofline_ms;
        point["sparse_tokens_per_s"] = p.sparse_tokens_per_s;
        point["sparse_speedup"] = p.sparse_speedup;
      }
    } else {
      point["skipped"] = p.skipped;
    }
    decode.push_back(std::move(point));
  }
  return {{"model", model},
          {"device", r.device},
          {"kv_fill", r.kv_fill},
          {"copy_gb_per_s", r.copy_bytes_per_s / 1e9},
          {"host_to_device_gb_per_s", r.host_to_device_bytes_per_s / 1e9},
          {"weight_bytes", r.weight_bytes},
          {"peak_gpu_memory", r.peak_gpu_memory},
          {"prefill", std::move(prefill)},
          {"decode", std::move(decode)}};
}

// The memory manager for a GPU of `gib`: BF16 weights and KV, the retrieval head's q/k
// projections over [embedding ; hidden] and the elastic slots of offloaded layers (counted only
// when sparse), host memory unbounded.
Result<MemoryManager> PlacementFor(const ModelConfig& c, double gib, int budget) {
  const int slots =
      budget > 0 ? SlotCapacity(budget - 1, cuda::CudaRunnerOptions{}.block_tokens) : 0;
  return MemoryManager::Create({.num_layers = c.num_layers,
                                .kv_heads = c.num_kv_heads,
                                .head_dim = c.head_dim,
                                .weight_bytes = 2.0 * static_cast<double>(c.ParameterCount()),
                                .head_bytes = 2.0 * 2 * c.hidden_size * (c.q_size() + c.kv_size()),
                                .gpu_bytes = gib * (1u << 30),
                                .host_bytes = 1e15,
                                .sparse_budget = slots});
}

void PrintTable(const cuda::BenchReport& r) {
  fmt::print("{}: device-to-device copy {:.0f} GB/s (read + write), weights {:.2f} GB\n", r.device,
             r.copy_bytes_per_s / 1e9, r.weight_bytes / 1e9);
  for (const cuda::PrefillPoint& p : r.prefill) {
    fmt::print("prefill {:>6} tokens: {:9.1f} ms  {:9.0f} tok/s  {:6.1f} TFLOP/s\n", p.tokens, p.ms,
               p.tokens_per_s, p.tflops);
  }
  for (const cuda::DecodePoint& p : r.decode) {
    if (!p.ran) {
      fmt::print("decode R={:<3} S={:<6} skipped: {}\n", p.batch, p.context, p.skipped);
      continue;
    }
    fmt::print(
        "decode R={:<3} S={:<6} {:8.2f} ms/step  {:8.0f} tok/s  roofline {:7.2f} ms ({:.2f}x)",
        p.batch, p.context, p.step_ms, p.tokens_per_s, p.roofline_ms, p.step_ms / p.roofline_ms);
    if (p.offloaded) {
      fmt::print("\n");
    } else {
      fmt::print("  whole rows {:8.2f} ms\n", p.whole_rows_step_ms);
    }
    if (p.offloaded) {
      const cuda::OffloadPoint& o = p.offload;
      fmt::print(
          "  offloaded: {} GPU layers, {:.1f} GiB KV in host memory; dense roofline {:.2f} ms; "
          "sparse in place {:.2f} ms; elastic {:.2f} ms ({:.2f} with fixed lists), roofline "
          "{:.2f} ms, {:.1f}% of positions copied, {:.1f} MB/step ({:.1f}% of reloading)\n",
          o.gpu_layers, o.host_kv_bytes / double(1 << 30), o.dense_roofline_ms,
          o.sparse_in_place_ms, o.elastic_ms, o.elastic_static_ms, o.elastic_roofline_ms,
          100 * o.loaded_fraction, o.copied_bytes_per_step / 1e6,
          o.reload_bytes_per_step > 0 ? 100 * o.copied_bytes_per_step / o.reload_bytes_per_step
                                      : 0.0);
    }
    if (p.sparse_ran) {
      fmt::print(
          "  sparse    {:8.2f} ms/step + select {:6.3f} ms  {:8.0f} tok/s  roofline {:7.2f} ms "
          "({:.2f}x)  {:.2f}x dense\n",
          p.sparse_step_ms, p.select_ms, p.sparse_tokens_per_s, p.sparse_roofline_ms,
          p.sparse_step_ms / p.sparse_roofline_ms, p.sparse_speedup);
    }
  }
  fmt::print("peak GPU memory in use: {:.1f} GiB; KV: {}\n", r.peak_gpu_memory / double(1 << 30),
             r.kv_fill);
}
#endif

}  // namespace

void AddBenchCommand(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<int> prefill_lens, batches, contexts;
    int steps = 20;
    int sparse_budget = 0;
    int sparse_dense_layers = 0;
    double memory_decay = SpecontextPlannerOptions{}.memory_decay;  // time what serving runs
    int summary_top_k = 1;
    double gpu_memory_gib = 0;
    double reselect = 0.1;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill and decode throughput on the GPU");
  cmd->add_option("--model", options->model, "preset:NAME or a Hugging Face model directory")
      ->required();
  cmd->add_option("--prefill-len", options->prefill_lens, "prompt lengths (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", options->batches, "decode batch sizes R (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--context", options->contexts, "decode context lengths S (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", options->steps, "timed decode steps per point")
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--sparse-budget", options->sparse_budget,
                  "also time SpeContext decode with B positions per KV head (0: dense only)")
      ->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--sparse-dense-layers", options->sparse_dense_layers,
                  "sparse steps still attend to every position in the first N layers")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--sparse-memory-decay", options->memory_decay,
                  "the timed selection ranks through a selection memory of this decay (0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--summary-top-k", options->summary_top_k,
                  "decode steps return logits summaries with this many top tokens, as serving "
                  "does (1: greedy, 1024: sampled; 0: whole rows only)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--gpu-memory-gib", options->gpu_memory_gib,
                  "cap GPU memory: the memory manager places each point's KV, offloading layers "
                  "to pinned host memory (0: every point GPU-resident)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--reselect", options->reselect,
                  "offloaded SpeContext points: share of each selection replaced every step")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--json", options->json, "print one JSON object instead of a table");
  cmd->callback([options] {
#if SPECONTEXT_HAVE_CUDA
    auto model = LoadModel(options->model);
    Result<cuda::BenchReport> report = model.status();
    if (model.ok()) {
      cuda::BenchOptions bench{.prefill_lens = options->prefill_lens,
                               .batches = options->batches,
                               .contexts = options->contexts,
                               .steps = options->steps,
                               .sparse_budget = options->sparse_budget,
                               .sparse_dense_layers = options->sparse_dense_layers,
                               .memory_decay = options->memory_decay,
                               .summary_top_k = options->summary_top_k,
                               .reselect = options->reselect};
      if (options->gpu_memory_gib > 0) {
        auto manager =
            PlacementFor((*model)->config, options->gpu_memory_gib, options->sparse_budget);
        if (!manager.ok()) {
          fmt::print(stderr, "specontext bench: {}\n", manager.status().ToString());
          throw CLI::RuntimeError(1);
        }
        bench.gpu_layers = [m = std::move(manager).value()](int batch, int context) {
          return m.MaxGpuLayers(context, batch);
        };
      }
      report = cuda::RunBench(**model, bench);
    }
    if (!report.ok()) {
      fmt::print(stderr, "specontext bench: {}\n", report.status().ToString());
      throw CLI::RuntimeError(1);
    }
    if (options->json) {
      fmt::print("{}\n", boost::json::serialize(ToJson(*report, options->model)));
    } else {
      PrintTable(*report);
    }
#else
    fmt::print(stderr, "specontext bench: this build has no CUDA backend\n");
    throw CLI::RuntimeError(1);
#endif
  });
}

}  // namespace specontext::server
