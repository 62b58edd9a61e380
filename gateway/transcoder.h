#ifndef DSAR_GATEWAY_TRANSCODER_H_
#define DSAR_GATEWAY_TRANSCODER_H_

// HTTP/JSON ↔ protobuf for one route, following the google.api.http rules:
// path variables set their fields, the body fills the whole message ("*") or
// one field, and every other field may come from the query string
// ("?status=RUNNING&page_size=10", nested fields as "a.b=…", repeated fields
// by repeating the parameter). JSON follows the protobuf JSON mapping.

#include <google/protobuf/message.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/route_table.h"

namespace dsar::gateway {

// Decoded query parameters, as the HTTP server hands them over.
using QueryParams = std::multimap<std::string, std::string>;

// The request message of `match.route->method`. INVALID_ARGUMENT with a
// "<field path>: <reason>" message for bad JSON, unknown fields or query
// parameters, and values of the wrong type; the path is in proto field
// names, e.g. "identities[0].type".
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequestMessage(
    const RouteMatch& match, const QueryParams& query, const std::string& body);

// The method's response message, parsed from `serialized`. INTERNAL when
// it does not parse as the method's output type.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> ParseResponse(
    const Route& route, const std::string& serialized);

// `response` (of the method's output type), or its response_body field, as
// JSON.
absl::StatusOr<std::string> ResponseJson(
    const Route& route, const google::protobuf::Message& response);

// ParseResponse, then ResponseJson.
absl::StatusOr<std::string> ResponseJson(const Route& route,
                                         const std::string& serialized);

// Rewrites a status of google::protobuf::util::JsonStringToMessage
// ("(a[0].b): invalid value …", "(a) b: Cannot find field.") into the
// "<field path>: <reason>" form; `prefix` is prepended to the path (for a
// body bound to one field). Exposed for tests.
absl::Status JsonParseError(absl::string_view parser_message,
                            const std::string& prefix);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_TRANSCODER_H_
