#ifndef DSAR_COMMON_GRPC_STATUS_H_
#define DSAR_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace dsar {

// absl::StatusCode and grpc::StatusCode share google.rpc.Code numbering, so
// the conversion keeps the code and the message as they are.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace dsar

#endif  // DSAR_COMMON_GRPC_STATUS_H_
