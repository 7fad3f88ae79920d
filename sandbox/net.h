// The sandbox's network namespace has only loopback, brought up here.
#pragma once

namespace kiln::sandbox::net {

// Sets IFF_UP on "lo". Returns 0 or -errno.
int LoopbackUp();

}  // namespace kiln::sandbox::net
