// A one-line progress bar on stderr, drawn only when stderr is a terminal so logs and pipes
// stay clean.
#pragma once

#include <cstddef>

namespace specontext::loadtest {

class ProgressBar {
 public:
  // `total` requests, or 0 when the run is bounded by `duration_s` instead.
  ProgressBar(size_t total, double duration_s, bool enabled);

  // Redraws at most ten times a second.
  void Update(size_t finished, size_t failed, double elapsed_s);
  // Draws the final state and ends the line.
  void Finish(size_t finished, size_t failed, double elapsed_s);

  // True when stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(size_t finished, size_t failed, double elapsed_s);

  size_t total_;
  double duration_s_;
  bool enabled_;
  double last_draw_s_ = -1;
};

}  // namespace specontext::loadtest
