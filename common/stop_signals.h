#ifndef DSAR_COMMON_STOP_SIGNALS_H_
#define DSAR_COMMON_STOP_SIGNALS_H_

// SIGTERM and SIGINT for dsard and dsar-worker, without signal handlers:
// the signals are blocked in every thread and taken with sigwait by one, so
// the code that stops the program runs as ordinary code.

namespace dsar {

// Blocks SIGTERM and SIGINT in the calling thread. Call first thing in
// main, before any thread starts (gRPC's included), so all inherit it.
void BlockStopSignals();

// Waits until SIGTERM or SIGINT arrives (or was already pending) and
// returns its number. REQUIRES: BlockStopSignals() ran before the threads.
int WaitForStopSignal();

}  // namespace dsar

#endif  // DSAR_COMMON_STOP_SIGNALS_H_
