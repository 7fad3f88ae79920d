// Loopback helpers for tests that start servers on 127.0.0.1.
#pragma once

#include <cstdint>

namespace kiln::testing {

// A TCP port on 127.0.0.1 that was free when asked (the caller binds it
// next); 0 if none could be had.
uint16_t FreePort();

// Whether something accepts connections on 127.0.0.1:port.
bool Listening(uint16_t port);

}  // namespace kiln::testing
