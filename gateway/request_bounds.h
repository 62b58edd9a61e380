#ifndef DSAR_GATEWAY_REQUEST_BOUNDS_H_
#define DSAR_GATEWAY_REQUEST_BOUNDS_H_

// Limits every HTTP request meets before anything parses it or copies it
// into a protobuf message (docs/gateway.md "Limits"). Outside input that
// breaks them is a 400 naming what and why, never a crash or a 500.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dsar {

// Deepest JSON nesting a body may have: a request body is a few levels
// deep; a 300,000-deep one would exhaust the stack of whatever walks it.
inline constexpr int kMaxJsonDepth = 64;
// Longest decoded path, query parameter or header value quoted back.
inline constexpr size_t kMaxPathBytes = 2048;

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points past U+10FFFF): what a protobuf string field accepts.
bool IsValidUtf8(absl::string_view text);

// INVALID_ARGUMENT when the JSON text `body` nests arrays and objects deeper
// than kMaxJsonDepth (counted outside strings; the text need not be valid
// JSON, the parser judges that later).
absl::Status CheckJsonDepth(absl::string_view body);

// INVALID_ARGUMENT naming the part when the decoded `path` or a decoded
// query parameter is not UTF-8 or is longer than kMaxPathBytes, or the body
// nests too deep.
absl::Status CheckRequestBounds(
    absl::string_view path,
    const std::vector<std::pair<std::string, std::string>>& query,
    absl::string_view body);

}  // namespace dsar

#endif  // DSAR_GATEWAY_REQUEST_BOUNDS_H_
