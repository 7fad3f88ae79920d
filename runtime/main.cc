// kiln-runtime: the agent loop that runs inside each sandbox. The loop itself
// is the subject of its own issue; this entry point exists so that the build,
// the sandbox and the packaging have their target.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("kiln-runtime %s\n", KILN_VERSION);
    return 0;
  }
  std::fprintf(stderr, "kiln-runtime: the agent loop is not built yet; only --version works\n");
  return 2;
}
