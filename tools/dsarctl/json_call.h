#ifndef DSAR_TOOLS_DSARCTL_JSON_CALL_H_
#define DSAR_TOOLS_DSARCTL_JSON_CALL_H_

// Calling any method with a JSON request: read the JSON, check its syntax
// (naming the position of a mistake), turn it into the method's dynamic
// request message and send it as raw bytes, so that no generated stub is
// needed.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {

// The request text named by `source`: inline JSON, "@FILE", or "@-" for
// standard input. An empty source means "{}". NOT_FOUND-style errors come
// back as INVALID_ARGUMENT naming the file.
absl::StatusOr<std::string> ReadRequestText(const std::string& source);

// OK when `text` is one well-formed JSON value. Otherwise INVALID_ARGUMENT
// whose message names the line, column and byte offset of the mistake and
// shows that line with a caret under it.
absl::Status CheckJsonSyntax(const std::string& text);

// Fills `message` from JSON (protobuf JSON mapping; unknown fields are
// errors). Checks syntax first, so a syntax error names its position.
absl::Status JsonToMessage(const std::string& text,
                           google::protobuf::Message* message);

// Calls `method` over `channel` with `request`, with the deadline and
// metadata of `options`. Unary and server-streaming methods only: for the
// others it returns UNIMPLEMENTED without calling. Each response is built by
// `factory` and given to `on_response`; one that cannot be parsed ends the
// call with INTERNAL.
grpc::Status CallMethod(
    grpc::Channel* channel, const Options& options,
    const google::protobuf::MethodDescriptor& method,
    const google::protobuf::Message& request,
    google::protobuf::DynamicMessageFactory* factory,
    const std::function<void(const google::protobuf::Message&)>& on_response);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_JSON_CALL_H_
