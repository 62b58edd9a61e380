#ifndef DSAR_COMMON_GRPC_MALFORMED_REQUEST_H_
#define DSAR_COMMON_GRPC_MALFORMED_REQUEST_H_

// A request message gRPC could not parse (truncated bytes, a string field
// that is not UTF-8) is answered INTERNAL with an empty message by gRPC's
// generated handlers, as if the server were broken. This server interceptor
// turns exactly that answer into INVALID_ARGUMENT naming the method, so the
// caller learns the fault is its request. dsard never answers INTERNAL
// without a message itself.

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace dsar {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestInterceptor();

}  // namespace dsar

#endif  // DSAR_COMMON_GRPC_MALFORMED_REQUEST_H_
