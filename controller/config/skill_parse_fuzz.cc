// libFuzzer target: skill files, core and companion. Companions come from the
// repositories kiln works on, so their parser sees untrusted bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/config/skill.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto core = kiln::skill::Parse(text, "skills/implement/SKILL.md");
  auto companion = kiln::skill::ParseCompanion(text, ".kiln/skills/x/SKILL.md");
  if (core.ok()) {
    auto s = kiln::skill::Specialize(*core, {{".kiln/skills/x/SKILL.md", text}});
    (void)s;
  }
  (void)companion;
  return 0;
}
