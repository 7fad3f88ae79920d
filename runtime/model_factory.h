// Picks the model client for a run spec's provider.
#pragma once

#include <memory>

#include "runtime/model/model.h"
#include "runtime/spec.h"

namespace kiln::model_factory {

// The API key is read from spec.api_key_env; when that variable is unset no
// key is sent, which is what the sandbox wants (the egress proxy adds it).
std::unique_ptr<model::Client> Make(const spec::Model& spec);

}  // namespace kiln::model_factory
