#include "controller/forge/db.h"

#include "controller/store/schema.h"

namespace kiln::forge::db {
Result<store::sqlite::Db> Open(const std::string& path) {
  return store::schema::Open(path, kBusyTimeoutMs);
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kiln::forge::db
