#ifndef DSAR_GATEWAY_BACKEND_CLIENT_H_
#define DSAR_GATEWAY_BACKEND_CLIENT_H_

// The gateway's gRPC connection to the coordinator. Calls any unary method by
// its path with serialized bytes (grpc::GenericStub), so transcoding needs no
// per-method code.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

namespace dsar::gateway {

// gRPC metadata key carrying the authenticated caller (the token's "sub");
// the coordinator records it as the actor of the events the call causes.
inline constexpr char kActorMetadataKey[] = "x-dsar-actor";

class BackendClient {
 public:
  // A client for `target` ("host:port") over `credentials` (null: plaintext;
  // for mutual TLS the gateway's certificate has OU=gateway, which lets it
  // set the actor metadata). Never fails and never blocks: the channel
  // connects lazily and reconnects by itself (back-off capped at one
  // second), so the gateway can start and keep serving errors while the
  // coordinator is down.
  // With `metrics`, every call's latency goes to its histogram
  // dsar_gateway_backend_seconds{service,method,code}; it must outlive the
  // client.
  //
  // `answer_spin`: how long a call waits for dsard's answer awake, polling
  // for it and yielding the CPU between polls, before it sleeps until the
  // answer comes. A GetRequest is answered in ~200 us; a thread that slept
  // meanwhile costs a wake-up on the way back, and on a virtual machine
  // whose vCPU went idle, more (docs/BENCHMARKS.md, "REST gateway"). Only
  // a call that starts while no other call is in flight spins: under load
  // wake-ups are cheap (the cores are busy) and the cores are dsard's.
  // Zero: every call sleeps.
  BackendClient(const std::string& target, absl::Duration call_timeout,
                std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
                prometheus::Registry* metrics = nullptr,
                absl::Duration answer_spin = absl::ZeroDuration());

  // Calls `grpc_path` ("/pkg.Service/Method") with `request` (serialized)
  // and `actor` as x-dsar-actor metadata (omitted when empty). Returns the
  // serialized response, or the call's status: UNAVAILABLE when the
  // coordinator cannot be reached, DEADLINE_EXCEEDED after the call timeout.
  // Thread-safe.
  absl::StatusOr<std::string> Call(const std::string& grpc_path,
                                   const std::string& request,
                                   const std::string& actor) const;

  // Prepares `context` for a call as Call does (deadline, actor metadata),
  // for typed stubs on channel().
  void PrepareContext(grpc::ClientContext* context,
                      const std::string& actor) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  // Takes the one event of a call from `queue`, as CompletionQueue::Next
  // does, spinning first as `answer_spin` says.
  bool AwaitCompletion(grpc::CompletionQueue& queue, void** tag,
                       bool* ok) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  absl::Duration call_timeout_;
  absl::Duration answer_spin_;
  mutable std::atomic<int> calls_in_flight_{0};
};

// `value` made safe for a gRPC metadata value (printable ASCII): other
// bytes become %XX. Exposed for tests.
std::string MetadataSafe(const std::string& value);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_BACKEND_CLIENT_H_
