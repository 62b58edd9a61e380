#ifndef DSAR_GATEWAY_NEXT_REQUEST_SPIN_H_
#define DSAR_GATEWAY_NEXT_REQUEST_SPIN_H_

// Whether a keep-alive connection waits for its next request awake
// (docs/gateway.md, "Waiting for the next request awake").
//
// A client that sends its requests one after another on a connection (a
// script paging through a list, a controller polling statuses) sends the
// next one some tens of microseconds after it read the last answer. A
// connection thread that went to sleep meanwhile pays a wake-up, and where
// idle CPUs halt (a VM) that is ~50 µs: more than the gateway's own work
// on a GetRequest. So after answering, the thread may poll for the next
// request for up to a window, yielding the CPU between polls, then sleep.

#include <atomic>

#include "absl/time/time.h"

namespace dsar::gateway {

// One connection's choice, from when its requests came: it spins while
// its last request came within the window of the answer before, and stops
// after one that did not, so a client that pauses between requests costs
// one window spent awake, then none until its requests come quickly again.
// Not thread-safe (one connection, one thread); time is passed in.
class NextRequestSpin {
 public:
  // A zero window never spins.
  explicit NextRequestSpin(absl::Duration window) : window_(window) {}

  absl::Duration window() const { return window_; }
  // Whether to wait awake, up to window(), for the next request.
  bool ShouldSpin() const { return spin_ && window_ > absl::ZeroDuration(); }
  // The next request came `gap` after the last answer went out (or after
  // the connection was accepted), whether the thread spun or slept.
  void RequestCame(absl::Duration gap) { spin_ = gap <= window_; }

 private:
  const absl::Duration window_;
  bool spin_ = true;
};

// At most `slots` connections spin at once; the others sleep at once, so
// that many connections cannot keep every core polling. Thread-safe.
class SpinSlots {
 public:
  explicit SpinSlots(int slots) : slots_(slots) {}

  // True: the caller may spin, and calls Give when it stops.
  bool TryTake() {
    int taken = taken_.load(std::memory_order_relaxed);
    while (taken < slots_) {
      if (taken_.compare_exchange_weak(taken, taken + 1,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }
  void Give() { taken_.fetch_sub(1, std::memory_order_release); }

 private:
  const int slots_;
  std::atomic<int> taken_{0};
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_NEXT_REQUEST_SPIN_H_
