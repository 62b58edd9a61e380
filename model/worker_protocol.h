#ifndef DSAR_MODEL_WORKER_PROTOCOL_H_
#define DSAR_MODEL_WORKER_PROTOCOL_H_

// Facts of the worker protocol (proto/dsar/v1/worker.proto) that travel
// beside its messages, shared by dsard and dsar-worker.

namespace dsar {

// Trailing metadata of a refused Heartbeat whose task's request has ended
// (cancelled, or finished without it), as against a lease another attempt
// holds: the worker then withdraws work it started elsewhere (an OpenDSR
// processor request, docs/opendsr.md). Value: the request's status name.
inline constexpr char kRequestEndedMetadataKey[] = "x-dsar-request-ended";

}  // namespace dsar

#endif  // DSAR_MODEL_WORKER_PROTOCOL_H_
