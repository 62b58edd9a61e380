#ifndef DSAR_COMMON_CLOCK_H_
#define DSAR_COMMON_CLOCK_H_

// Where the engine reads the time, so deadlines, leases, retries and alerts
// can be tested without sleeping (like LevelDB's Env or Envoy's TimeSource).

#include <atomic>
#include <cstdint>

namespace dsar {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Safe to call from any thread.
  virtual int64_t NowMillis() const = 0;
};

// The system's wall clock. Never destroyed.
Clock* RealClock();

// A clock that moves only when told to; for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ms) : now_ms_(start_ms) {}
  int64_t NowMillis() const override { return now_ms_.load(); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }
  void Set(int64_t ms) { now_ms_.store(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace dsar

#endif  // DSAR_COMMON_CLOCK_H_
