// specontext: one executable, one subcommand per job.
#include <CLI/CLI.hpp>

#include "server/bench_command.h"
#include "server/convert_command.h"
#include "server/eval_command.h"
#include "server/generate_command.h"
#include "server/serve_command.h"
#include "server/throughput_command.h"
#include "server/version_command.h"

int main(int argc, char** argv) {
  CLI::App app{"specontext: a long-context LLM serving daemon"};
  app.require_subcommand(1);
  specontext::server::AddServeCommand(app);
  specontext::server::AddVersionCommand(app);
  specontext::server::AddConvertCommand(app);
  specontext::server::AddGenerateCommand(app);
  specontext::server::AddBenchCommand(app);
  specontext::server::AddEvalCommand(app);
  specontext::server::AddThroughputCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
