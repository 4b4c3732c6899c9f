#include "loadtest/request_body.h"

#include <boost/json.hpp>

namespace specontext::loadtest {

std::string BuildRequestBody(ApiKind api, const SamplingOptions& sampling,
                             const SyntheticPrompt& prompt) {
  boost::json::object body;
  body["model"] = sampling.model;
  if (api == ApiKind::kCompletions) {
    body["prompt"] = prompt.text;
  } else {
    body["messages"] = boost::json::array{{{"role", "user"}, {"content", prompt.text}}};
  }
  body["max_tokens"] = prompt.output_tokens;
  body["temperature"] = sampling.temperature;
  body["ignore_eos"] = sampling.ignore_eos;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  return boost::json::serialize(body);
}

}  // namespace specontext::loadtest
