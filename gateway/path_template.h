#ifndef DSAR_GATEWAY_PATH_TEMPLATE_H_
#define DSAR_GATEWAY_PATH_TEMPLATE_H_

// The path templates of google.api.http (google/api/http.proto):
//
//   Template = "/" Segments [ Verb ] ;
//   Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   Verb     = ":" LITERAL ;
//
// A variable without "=" matches one segment ("{id}" is "{id=*}"). "**"
// matches zero or more segments and may only be the last segment.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar::gateway {

// A variable bound by a match: the field path (e.g. "id" or "parent.name")
// and the text it matched (segments joined with "/"), as found in the URL
// path (the caller decodes percent-escapes before matching, if at all).
struct PathBinding {
  std::string field_path;
  std::string value;
};

class PathTemplate {
 public:
  // An empty template; it matches no path.
  PathTemplate() = default;

  // Parses `text`. INVALID_ARGUMENT naming the position when it is not a
  // template of the grammar above.
  static absl::StatusOr<PathTemplate> Parse(const std::string& text);

  // The bindings when `path` matches this template, std::nullopt otherwise.
  // `path` is the path part of a URL: it starts with "/" and holds no query.
  std::optional<std::vector<PathBinding>> Match(const std::string& path) const;

  const std::string& text() const { return text_; }
  // Field paths of the variables, in template order.
  std::vector<std::string> VariableFieldPaths() const;
  // Number of literal segments and the verb: more literals means a more
  // specific template, which wins when two templates match one path.
  int LiteralCount() const;

 private:
  enum class SegmentKind { kLiteral, kSingleWildcard, kMultiWildcard };
  struct Segment {
    SegmentKind kind;
    std::string literal;  // For kLiteral.
  };
  struct Variable {
    std::string field_path;
    size_t first_segment;  // Index into segments_.
    size_t end_segment;    // One past the variable's last segment.
  };

  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;  // Without the ':'; empty when there is none.
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_PATH_TEMPLATE_H_
