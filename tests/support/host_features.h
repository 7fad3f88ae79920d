// Kernel-dependent tests decide from the host, never assume it: a test that
// needs a feature asks the probe (sandbox/probe.h) first and, when the feature
// is absent or cannot be established, skips with the probe's own words, so
// that the skip says what this host lacks and how that was proven.
#pragma once

#include <gtest/gtest.h>

#include "sandbox/probe.h"

// Skips the current test unless `finding` (a probe::Finding) is present.
#define KILN_REQUIRE_HOST(finding, what)                                                    \
  do {                                                                                      \
    const ::kiln::sandbox::probe::Finding kiln_finding_ = (finding);                        \
    if (!kiln_finding_.present()) {                                                         \
      GTEST_SKIP() << (what) << " is " << ::kiln::sandbox::probe::Name(kiln_finding_.state) \
                   << " on this host: " << kiln_finding_.detail;                            \
    }                                                                                       \
  } while (0)

// Rootless kiln, as the suites run it (dropped to nobody): an unprivileged
// user namespace with kiln's overlay root inside.
#define KILN_REQUIRE_ROOTLESS_HOST()                                                          \
  do {                                                                                        \
    KILN_REQUIRE_HOST(::kiln::sandbox::probe::UserNamespace(::kiln::sandbox::probe::kNobody), \
                      "an unprivileged user namespace");                                      \
    KILN_REQUIRE_HOST(::kiln::sandbox::probe::OverlayRoot(::kiln::sandbox::probe::kNobody),   \
                      "overlayfs in an unprivileged user namespace");                         \
  } while (0)
