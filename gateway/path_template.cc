#include "gateway/path_template.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dsar::gateway {
namespace {

absl::Status ParseError(const std::string& text, size_t pos,
                        absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("path template \"", text, "\" at offset ", pos, ": ", what));
}

bool IsFieldPath(absl::string_view path) {
  if (path.empty()) return false;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (part.empty() ||
        absl::ascii_isdigit(static_cast<unsigned char>(part[0])))
      return false;
    for (char c : part) {
      if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'))
        return false;
    }
  }
  return true;
}

// A literal segment or verb: anything but the template's own punctuation.
bool IsLiteral(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c == '/' || c == '{' || c == '}' || c == '*' || c == '=' || c == ':' ||
        c == '?' || c == '#')
      return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<PathTemplate> PathTemplate::Parse(const std::string& text) {
  PathTemplate tmpl;
  tmpl.text_ = text;
  if (text.empty() || text[0] != '/') {
    return ParseError(text, 0, "must start with '/'");
  }
  size_t pos = 1;
  bool in_variable = false;
  Variable variable;
  // Each iteration reads one segment, a variable start or a variable end.
  while (true) {
    if (pos >= text.size()) return ParseError(text, pos, "empty segment");
    if (!in_variable && text[pos] == '{') {
      size_t close = text.find_first_of("=}", pos + 1);
      if (close == std::string::npos) {
        return ParseError(text, pos, "unterminated variable");
      }
      variable.field_path = text.substr(pos + 1, close - pos - 1);
      if (!IsFieldPath(variable.field_path)) {
        return ParseError(text, pos + 1, "not a field path");
      }
      variable.first_segment = tmpl.segments_.size();
      if (text[close] == '}') {
        // "{field}" is "{field=*}".
        tmpl.segments_.push_back({SegmentKind::kSingleWildcard, ""});
        variable.end_segment = tmpl.segments_.size();
        tmpl.variables_.push_back(variable);
        pos = close + 1;
      } else {
        in_variable = true;
        pos = close + 1;
        continue;
      }
    } else {
      size_t end = text.find_first_of(in_variable ? "/}" : "/:", pos);
      if (end == std::string::npos) end = text.size();
      std::string segment = text.substr(pos, end - pos);
      if (segment == "*") {
        tmpl.segments_.push_back({SegmentKind::kSingleWildcard, ""});
      } else if (segment == "**") {
        tmpl.segments_.push_back({SegmentKind::kMultiWildcard, ""});
      } else if (IsLiteral(segment)) {
        tmpl.segments_.push_back({SegmentKind::kLiteral, segment});
      } else {
        return ParseError(text, pos, "not a segment");
      }
      pos = end;
      if (in_variable && pos < text.size() && text[pos] == '}') {
        in_variable = false;
        variable.end_segment = tmpl.segments_.size();
        tmpl.variables_.push_back(variable);
        ++pos;
      }
    }
    if (pos == text.size()) break;
    if (text[pos] == '/') {
      ++pos;
      continue;
    }
    if (text[pos] == ':' && !in_variable) {
      tmpl.verb_ = text.substr(pos + 1);
      if (!IsLiteral(tmpl.verb_)) return ParseError(text, pos, "bad verb");
      break;
    }
    return ParseError(text, pos, "unexpected character");
  }
  if (in_variable)
    return ParseError(text, text.size(), "unterminated variable");
  for (size_t i = 0; i + 1 < tmpl.segments_.size(); ++i) {
    if (tmpl.segments_[i].kind == SegmentKind::kMultiWildcard) {
      return ParseError(text, 0, "'**' must be the last segment");
    }
  }
  for (size_t i = 0; i < tmpl.variables_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (tmpl.variables_[i].field_path == tmpl.variables_[j].field_path) {
        return ParseError(
            text, 0,
            absl::StrCat("variable ", tmpl.variables_[i].field_path,
                         " bound twice"));
      }
    }
  }
  return tmpl;
}

std::optional<std::vector<PathBinding>> PathTemplate::Match(
    const std::string& path) const {
  if (path.empty() || path[0] != '/') return std::nullopt;
  absl::string_view rest(path);
  rest.remove_prefix(1);
  if (!verb_.empty()) {
    std::string suffix = absl::StrCat(":", verb_);
    if (!absl::EndsWith(rest, suffix)) return std::nullopt;
    rest.remove_suffix(suffix.size());
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  // `start[i]` is the first path part matched by segment i; only a trailing
  // "**" consumes more (or less) than one part, so no backtracking is needed.
  std::vector<size_t> start(segments_.size() + 1, 0);
  size_t pi = 0;
  for (size_t si = 0; si < segments_.size(); ++si) {
    start[si] = pi;
    const Segment& segment = segments_[si];
    if (segment.kind == SegmentKind::kMultiWildcard) {
      pi = parts.size();
      continue;
    }
    if (pi >= parts.size() || parts[pi].empty()) return std::nullopt;
    if (segment.kind == SegmentKind::kLiteral && parts[pi] != segment.literal) {
      return std::nullopt;
    }
    ++pi;
  }
  start[segments_.size()] = pi;
  if (pi != parts.size()) return std::nullopt;

  std::vector<PathBinding> bindings;
  bindings.reserve(variables_.size());
  for (const Variable& variable : variables_) {
    std::vector<absl::string_view> matched(
        parts.begin() + start[variable.first_segment],
        parts.begin() + start[variable.end_segment]);
    bindings.push_back({variable.field_path, absl::StrJoin(matched, "/")});
  }
  return bindings;
}

std::vector<std::string> PathTemplate::VariableFieldPaths() const {
  std::vector<std::string> paths;
  for (const Variable& variable : variables_) {
    paths.push_back(variable.field_path);
  }
  return paths;
}

int PathTemplate::LiteralCount() const {
  int count = verb_.empty() ? 0 : 1;
  for (const Segment& segment : segments_) {
    if (segment.kind == SegmentKind::kLiteral) ++count;
  }
  return count;
}

}  // namespace dsar::gateway
