#include "common/mutex_mode.h"

#include "absl/synchronization/mutex.h"

namespace dsar {

void UseReleaseMutexMode() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace dsar
