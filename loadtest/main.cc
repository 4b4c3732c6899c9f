// specontext-loadtest: a streaming load generator for OpenAI-compatible servers.
#include <CLI/CLI.hpp>

#include "loadtest/loadtest_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Load generator for OpenAI-compatible servers: streams synthetic requests and reports "
      "TTFT, TPOT, ITL, end-to-end latency, throughput and goodput"};
  specontext::loadtest::CommandOptions options;
  specontext::loadtest::AddOptions(app, options);
  CLI11_PARSE(app, argc, argv);
  return specontext::loadtest::RunLoadTest(options);
}
