#ifndef DSAR_COMMON_GRPC_SERVER_METRICS_H_
#define DSAR_COMMON_GRPC_SERVER_METRICS_H_

// Latency of every gRPC call a server answers, by method and status code:
// the histogram dsar_grpc_server_handling_seconds{service,method,code}
// (docs/operations.md). Installed as a server interceptor, so no service
// implementation measures itself.

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "prometheus/registry.h"

namespace dsar {

// Registers the histogram family in `registry` (which must outlive the
// server) and returns the interceptor factory to hand to
// ServerBuilder::experimental().SetInterceptorCreators.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeGrpcServerMetrics(prometheus::Registry& registry);

// The client side: the histogram `name`{service,method,code} of every call
// made on a channel built with the returned factory
// (grpc::experimental::CreateCustomChannelWithInterceptors), from the
// call's start to its status. The gateway's backend calls use it.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeGrpcClientMetrics(prometheus::Registry& registry, const std::string& name,
                      const std::string& help);

// The service and method labels of a call to `path` ("/pkg.Service/Method"):
// its own names when the method is in the linked protobuf descriptors or is
// gRPC's health check, else "unknown" (so a client cannot add label values
// by calling made-up methods).
void GrpcMethodLabels(const std::string& path, std::string* service,
                      std::string* method);

}  // namespace dsar

#endif  // DSAR_COMMON_GRPC_SERVER_METRICS_H_
