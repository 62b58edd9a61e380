#ifndef DSAR_COMMON_MUTEX_MODE_H_
#define DSAR_COMMON_MUTEX_MODE_H_

namespace dsar {

// Turns off absl::Mutex's deadlock detection for this process, as a release
// build of Abseil has it. Debian 12 builds Abseil without NDEBUG, so every
// absl::Mutex lock and unlock — gRPC's core locks with it, so every call,
// stream message and timer — also updates a graph of the locks each thread
// holds, under one global lock, looking for lock-order cycles. That took
// ~4% of dsar-gateway's samples (more than its JSON printing) in
// docs/BENCHMARKS.md, "Waiting for dsard awake (session 11)". Programs call
// it first thing in main(); tests do not, so lock-order cycles still abort
// them.
void UseReleaseMutexMode();

}  // namespace dsar

#endif  // DSAR_COMMON_MUTEX_MODE_H_
