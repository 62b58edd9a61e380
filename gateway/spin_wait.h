#ifndef DSAR_GATEWAY_SPIN_WAIT_H_
#define DSAR_GATEWAY_SPIN_WAIT_H_

// Waiting awake: how the gateway waits for dsard's answer
// (BackendClient, --backend_spin_us) and for a connection's next request
// (BufferedHttpServer, --next_request_spin_us) before it sleeps.

#include <sched.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace dsar::gateway {

// Calls `ready` (a check that does not block) until it returns true or
// `window` has passed, yielding the CPU between calls so that a runnable
// thread on this core (dsard's, a worker's, a caller's) goes first. True
// once `ready` did. `ready` is called at least once.
template <typename Ready>
bool SpinWait(absl::Duration window, Ready ready) {
  const absl::Time until = absl::Now() + window;
  while (true) {
    if (ready()) return true;
    if (absl::Now() >= until) return false;
    sched_yield();
  }
}

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_SPIN_WAIT_H_
