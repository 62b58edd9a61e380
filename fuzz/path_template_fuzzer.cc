// google.api.http path templates and URL paths matched against them. The
// templates come from the protos (a new RPC brings a new one), the paths
// from any HTTP client.
//
// Input: "<template>\n<path>" (no newline: the input is both). When the
// template parses, the path is matched against it, and so is a path made
// from the template itself (every wildcard and variable filled in), which
// must match.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "gateway/path_template.h"

namespace {

// A path the template matches: literals kept, "*" and "{x}" -> "a",
// "**" -> "b/c", "{x=...}" -> what is inside.
std::string ConcretePath(const std::string& text) {
  std::string path;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '{') {
      size_t close = text.find_first_of("=}", i);
      if (text[close] == '}') {
        path += "a";
      }
      i = close + 1;
    } else if (c == '}') {
      ++i;
    } else if (c == '*') {
      if (i + 1 < text.size() && text[i + 1] == '*') {
        path += "b/c";
        i += 2;
      } else {
        path += "a";
        ++i;
      }
    } else {
      path.push_back(c);
      ++i;
    }
  }
  return path;
}

void CheckBindings(const dsar::gateway::PathTemplate& tmpl,
                   const std::vector<dsar::gateway::PathBinding>& bindings) {
  std::vector<std::string> fields = tmpl.VariableFieldPaths();
  FUZZ_CHECK(bindings.size() == fields.size(), tmpl.text());
  for (size_t i = 0; i < bindings.size(); ++i) {
    FUZZ_CHECK(bindings[i].field_path == fields[i], tmpl.text());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string text = input.substr(0, newline);
  std::string path =
      newline == std::string::npos ? input : input.substr(newline + 1);

  absl::StatusOr<dsar::gateway::PathTemplate> tmpl =
      dsar::gateway::PathTemplate::Parse(text);
  if (!tmpl.ok()) {
    FUZZ_CHECK(tmpl.status().code() == absl::StatusCode::kInvalidArgument,
               tmpl.status().ToString());
    return 0;
  }
  FUZZ_CHECK(tmpl->text() == text, text);
  FUZZ_CHECK(tmpl->LiteralCount() >= 0, text);

  std::optional<std::vector<dsar::gateway::PathBinding>> bindings =
      tmpl->Match(path);
  if (bindings.has_value()) CheckBindings(*tmpl, *bindings);

  std::string concrete = ConcretePath(text);
  bindings = tmpl->Match(concrete);
  FUZZ_CHECK(bindings.has_value(),
             "template " + text + " does not match " + concrete);
  CheckBindings(*tmpl, *bindings);
  return 0;
}
