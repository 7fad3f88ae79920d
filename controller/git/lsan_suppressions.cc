// LeakSanitizer suppressions of git_test (used by the KILN_SANITIZE build).
//
// libgit2 1.5's PCRE2 wrapper (git_regexp_match) returns without freeing its
// match data when a regex does not match; git_remote_lookup hits it on every
// call. Fixed upstream by libgit2/libgit2#6382 (libgit2 1.6), not in Debian
// 12's 1.5.1. kiln_git uses PCRE2 only through libgit2, so allocations made
// inside libpcre2 are that leak alone (the match data and the match frames
// hung on it). Matched by module: the default fast unwinder stops inside
// libpcre2, before any named frame.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpcre2-8.so\n"; }
