#include "common/clock.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace dsar {
namespace {

class SystemClock : public Clock {
 public:
  int64_t NowMillis() const override { return absl::ToUnixMillis(absl::Now()); }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new SystemClock();
  return clock;
}

}  // namespace dsar
