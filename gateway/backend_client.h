#ifndef DSAR_GATEWAY_BACKEND_CLIENT_H_
#define DSAR_GATEWAY_BACKEND_CLIENT_H_

// The gateway's gRPC connection to the coordinator. Calls any unary method by
// its path with serialized bytes (grpc::GenericStub), so transcoding needs no
// per-method code.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

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
  BackendClient(const std::string& target, absl::Duration call_timeout,
                std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
                prometheus::Registry* metrics = nullptr);

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
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  absl::Duration call_timeout_;
};

// `value` made safe for a gRPC metadata value (printable ASCII): other
// bytes become %XX. Exposed for tests.
std::string MetadataSafe(const std::string& value);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_BACKEND_CLIENT_H_
