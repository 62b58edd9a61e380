#ifndef DSAR_COMMON_LISTEN_ADDRESS_H_
#define DSAR_COMMON_LISTEN_ADDRESS_H_

// Listen addresses ("host:port") of dsard's gRPC port and the gateway's HTTP
// port: whether other machines can reach them decides whether plaintext is
// allowed there (docs/transport-security.md).

#include "absl/strings/string_view.h"

namespace dsar {

// True when `listen` ("host:port", "[v6]:port", "unix:PATH") binds only to
// this machine: localhost, 127.0.0.0/8, [::1], or a unix socket. False for
// anything else, including wildcards (0.0.0.0, [::], ":port") and names
// other than localhost.
bool IsLoopbackAddress(absl::string_view listen);

}  // namespace dsar

#endif  // DSAR_COMMON_LISTEN_ADDRESS_H_
