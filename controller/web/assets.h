// The web view's static files (assets/), compiled into the binary: a page
// needs nothing but kiln itself, on an air-gapped network too.
#pragma once

#include <string_view>

namespace kiln::web {

struct Asset {
  std::string_view name;  // "kiln.css", as under /static/
  std::string_view type;  // its Content-Type
  std::string_view body;
};

// The asset of that name; null when there is none.
const Asset* FindAsset(std::string_view name);

}  // namespace kiln::web
