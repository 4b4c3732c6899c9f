#include "loadtest/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace specontext::loadtest {

namespace {
constexpr int kWidth = 30;
constexpr double kRedrawInterval_s = 0.1;
}  // namespace

ProgressBar::ProgressBar(size_t total, double duration_s, bool enabled)
    : total_(total), duration_s_(duration_s), enabled_(enabled) {}

bool ProgressBar::StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

void ProgressBar::Update(size_t finished, size_t failed, double elapsed_s) {
  if (!enabled_ || elapsed_s - last_draw_s_ < kRedrawInterval_s) return;
  Draw(finished, failed, elapsed_s);
}

void ProgressBar::Finish(size_t finished, size_t failed, double elapsed_s) {
  if (!enabled_) return;
  Draw(finished, failed, elapsed_s);
  std::fputc('\n', stderr);
}

void ProgressBar::Draw(size_t finished, size_t failed, double elapsed_s) {
  last_draw_s_ = elapsed_s;
  double fraction = total_ > 0 ? static_cast<double>(finished) / static_cast<double>(total_)
                               : elapsed_s / duration_s_;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  const std::string of = total_ > 0 ? "/" + std::to_string(total_) : "";
  std::fprintf(stderr, "\r[%s] %3.0f%% %zu%s done, %zu failed, %.1f s", bar.c_str(), fraction * 100,
               finished, of.c_str(), failed, elapsed_s);
  std::fflush(stderr);
}

}  // namespace specontext::loadtest
