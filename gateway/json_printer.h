#ifndef DSAR_GATEWAY_JSON_PRINTER_H_
#define DSAR_GATEWAY_JSON_PRINTER_H_

// The protobuf JSON mapping, printed straight from reflection.
//
// Protobuf 3.21's MessageToJsonString re-serializes the message and walks
// it through a type resolver; for a typical Request that is most of the
// gateway's own time per call (docs/BENCHMARKS.md). This printer gives the
// same JSON (lowerCamelCase names, defaults omitted, enums by name, 64-bit
// integers as strings, bytes in base64, Timestamp/Duration/FieldMask and
// wrapper types in their special forms) directly from the message, and
// hands messages that hold google.protobuf.Any, Struct, Value or ListValue
// to MessageToJsonString instead of reimplementing those.

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/statusor.h"

namespace dsar::gateway {

// `message` as protobuf JSON, equal (as JSON values) to what
// google::protobuf::util::MessageToJsonString prints with default options.
// INVALID_ARGUMENT for values the mapping cannot represent (a Timestamp out
// of range, invalid UTF-8 in a string), as MessageToJsonString does.
absl::StatusOr<std::string> PrintJson(const google::protobuf::Message& message);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_JSON_PRINTER_H_
