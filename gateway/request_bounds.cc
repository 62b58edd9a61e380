#include "gateway/request_bounds.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace dsar {

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    int length = 0;
    uint32_t code = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      code = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (int k = 1; k < length; ++k) {
      const uint8_t next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

absl::Status CheckJsonDepth(absl::string_view body) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "body: JSON nested deeper than ", kMaxJsonDepth, " levels"));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRequestBounds(
    absl::string_view path,
    const std::vector<std::pair<std::string, std::string>>& query,
    absl::string_view body) {
  if (path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path: longer than ", kMaxPathBytes, " bytes once decoded"));
  }
  if (!IsValidUtf8(path)) {
    return absl::InvalidArgumentError(
        "path: not valid UTF-8 once percent-decoded");
  }
  for (const auto& [name, value] : query) {
    if (!IsValidUtf8(name)) {
      return absl::InvalidArgumentError(
          "query: a parameter name is not valid UTF-8 once percent-decoded");
    }
    if (name.size() > kMaxPathBytes || value.size() > kMaxPathBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("query: parameter longer than ", kMaxPathBytes,
                       " bytes once decoded"));
    }
    if (!IsValidUtf8(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query: ", name, ": not valid UTF-8 once percent-decoded"));
    }
  }
  return CheckJsonDepth(body);
}

}  // namespace dsar
