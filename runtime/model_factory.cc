#include "runtime/model_factory.h"

#include "runtime/model/anthropic_client.h"
#include "runtime/model/client_common.h"
#include "runtime/model/openai_client.h"

namespace kiln::model_factory {

std::unique_ptr<model::Client> Make(const spec::Model& s) {
  if (s.provider == "openai") {
    openai_client::Options o;
    o.base_url = s.base_url;
    o.api_key = model::ApiKeyFrom(s.api_key_env);
    return openai_client::Make(o);
  }
  anthropic_client::Options o;
  o.base_url = s.base_url;
  o.api_key = model::ApiKeyFrom(s.api_key_env);
  return anthropic_client::Make(o);
}

}  // namespace kiln::model_factory
