// The benchmark result as JSON (for machines and regression tracking) and as a table (for
// people).
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "loadtest/metrics.h"

namespace specontext::loadtest {

// `config` describes the run and is embedded as-is under "config".
boost::json::object ResultToJson(const BenchmarkResult& result, boost::json::object config);

std::string FormatTable(const BenchmarkResult& result, const std::string& title);

}  // namespace specontext::loadtest
