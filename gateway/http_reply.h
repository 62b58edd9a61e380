#ifndef DSAR_GATEWAY_HTTP_REPLY_H_
#define DSAR_GATEWAY_HTTP_REPLY_H_

// What a gateway handler answers, independent of the HTTP library.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gateway/error_response.h"

namespace dsar::gateway {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

inline HttpReply JsonReply(int status, std::string body) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

// The google.rpc.Status reply for a failed `status`.
inline HttpReply ErrorReply(const absl::Status& status) {
  return JsonReply(HttpStatusForCode(status.code()), ErrorJson(status));
}

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_HTTP_REPLY_H_
