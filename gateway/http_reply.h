#ifndef DSAR_GATEWAY_HTTP_REPLY_H_
#define DSAR_GATEWAY_HTTP_REPLY_H_

// What a gateway handler answers, independent of the HTTP library.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gateway/error_response.h"

namespace dsar::gateway {

// A body too large to hold in memory, produced piece by piece as the client
// reads it (the HTTP library pulls; a piece is produced only once the
// previous one was written).
class StreamedBody {
 public:
  virtual ~StreamedBody() = default;
  // Bytes the body has in all (sent as Content-Length).
  virtual int64_t size() const = 0;
  // Replaces `*piece` with the next bytes. false when the body cannot be
  // finished: the connection is then closed, so the client sees a body
  // shorter than its Content-Length and knows it is incomplete.
  virtual bool Next(std::string* piece) = 0;
  // Called once when the response is over: `complete` when every byte was
  // written. Lets the body release what it holds (e.g. cancel an RPC).
  virtual void Finish(bool complete) = 0;
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body instead of `body`.
  std::shared_ptr<StreamedBody> streamed_body;
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
