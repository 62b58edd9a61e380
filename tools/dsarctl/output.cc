#include "tools/dsarctl/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dsarctl {
namespace {

const char* AnsiCode(Color color) {
  switch (color) {
    case Color::kGreen:
      return "\033[32m";
    case Color::kRed:
      return "\033[31m";
    case Color::kYellow:
      return "\033[33m";
    case Color::kCyan:
      return "\033[36m";
    case Color::kDim:
      return "\033[2m";
    case Color::kBold:
      return "\033[1m";
    case Color::kNone:
      break;
  }
  return "";
}

std::string JsonString(const std::string& text) {
  return Json(text).dump(-1, ' ', false,
                         nlohmann::json::error_handler_t::replace);
}

// True when `text` can be written as a YAML plain scalar and reads back as
// the same string (not a number, bool, null, date, and no syntax).
bool IsPlainSafe(const std::string& text) {
  if (text.empty() || text.size() > 200) return false;
  const char first = text.front();
  if (!std::isalpha(static_cast<unsigned char>(first)) && first != '_' &&
      first != '/') {
    return false;  // Digits, signs and dots could read as numbers or dates.
  }
  if (text.back() == ' ' || text.back() == ':') return false;
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string("_./@+-: ").find(c) == std::string::npos) {
      return false;
    }
  }
  if (text.find(": ") != std::string::npos) return false;
  const std::string lower = absl::AsciiStrToLower(text);
  for (const char* reserved :
       {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}) {
    if (lower == reserved) return false;
  }
  return true;
}

std::string YamlScalar(const Json& value) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    return IsPlainSafe(text) ? text : JsonString(text);
  }
  return value.dump();
}

bool IsNonEmptyContainer(const Json& value) {
  return (value.is_object() || value.is_array()) && !value.empty();
}

// Lines of a non-empty container, each indented by `indent` spaces.
void EmitBlock(const Json& value, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      absl::StrAppend(out, pad, IsPlainSafe(key) ? key : JsonString(key), ":");
      if (IsNonEmptyContainer(item)) {
        absl::StrAppend(out, "\n");
        EmitBlock(item, indent + 2, out);
      } else {
        absl::StrAppend(out, " ",
                        item.is_object()  ? "{}"
                        : item.is_array() ? "[]"
                                          : YamlScalar(item),
                        "\n");
      }
    }
    return;
  }
  for (const Json& item : value) {
    if (IsNonEmptyContainer(item)) {
      // The item's block, with "- " in place of its first indent.
      std::string block;
      EmitBlock(item, indent + 2, &block);
      block.replace(indent, 2, "- ");
      absl::StrAppend(out, block);
    } else {
      absl::StrAppend(out, pad, "- ",
                      item.is_object()  ? "{}"
                      : item.is_array() ? "[]"
                                        : YamlScalar(item),
                      "\n");
    }
  }
}

}  // namespace

std::string Paint(const Options& options, const std::string& text,
                  Color color) {
  if (!options.color || color == Color::kNone || text.empty()) return text;
  return absl::StrCat(AnsiCode(color), text, "\033[0m");
}

Color StatusColor(const std::string& status) {
  if (status == "COMPLETED" || status == "SUCCEEDED") return Color::kGreen;
  if (status == "FAILED" || status == "STEP_FAILED" ||
      status == "NEEDS_ATTENTION" || status == "BLOCKED") {
    return Color::kRed;
  }
  if (status == "RUNNING" || status == "LEASED") return Color::kCyan;
  if (status == "RETRY_WAIT" || status == "VERIFYING") return Color::kYellow;
  if (status == "CANCELLED" || status == "SKIPPED") return Color::kDim;
  return Color::kNone;
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<Cell> row) {
  row.resize(headers_.size(), Cell(""));
  rows_.push_back(std::move(row));
}

void Table::Print(const Options& options) const {
  std::vector<size_t> widths;
  for (const std::string& header : headers_) widths.push_back(header.size());
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].text.size());
    }
  }
  auto print_line = [&](const std::vector<Cell>& cells, bool header) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool last = i + 1 == cells.size();
      std::string padding =
          last ? "" : std::string(widths[i] - cells[i].text.size() + 2, ' ');
      Color color = header ? Color::kBold : cells[i].color;
      absl::StrAppend(&line, Paint(options, cells[i].text, color), padding);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  std::vector<Cell> header_cells;
  for (const std::string& header : headers_) header_cells.emplace_back(header);
  print_line(header_cells, true);
  for (const auto& row : rows_) print_line(row, false);
}

std::string MessageToJson(const google::protobuf::Message& message, bool pretty,
                          bool emit_defaults) {
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = pretty;
  print.preserve_proto_field_names = true;
  print.always_print_primitive_fields = emit_defaults;
  std::string json;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &json, print);
  if (!status.ok()) {
    // Only a message that cannot be printed at all (an Any of an unknown
    // type) lands here; say so rather than print nothing.
    return JsonString(absl::StrCat(
        "<cannot print as JSON: ", std::string(status.message()), ">"));
  }
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

Json MessageToTree(const google::protobuf::Message& message,
                   bool emit_defaults) {
  return Json::parse(MessageToJson(message, false, emit_defaults), nullptr,
                     /*allow_exceptions=*/false);
}

std::string JsonToYaml(const Json& value) {
  if (!IsNonEmptyContainer(value)) {
    return absl::StrCat(value.is_object()  ? "{}"
                        : value.is_array() ? "[]"
                                           : YamlScalar(value),
                        "\n");
  }
  std::string out;
  EmitBlock(value, 0, &out);
  return out;
}

void PrintTree(const Options& options, const Json& value) {
  if (options.output == "yaml") {
    std::fputs(JsonToYaml(value).c_str(), stdout);
  } else {
    std::printf(
        "%s\n",
        value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            .c_str());
  }
}

void PrintMessage(const Options& options,
                  const google::protobuf::Message& message,
                  bool emit_defaults) {
  PrintTree(options, MessageToTree(message, emit_defaults));
}

absl::Time ToAbslTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) +
         absl::Nanoseconds(time.nanos());
}

std::string FormatTimestamp(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", ToAbslTime(time),
                          absl::UTCTimeZone());
}

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  int64_t seconds = absl::ToInt64Seconds(age);
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m", seconds % 60, "s");
  if (seconds < 86400) {
    return absl::StrCat(seconds / 3600, "h", (seconds % 3600) / 60, "m");
  }
  return absl::StrCat(seconds / 86400, "d", (seconds % 86400) / 3600, "h");
}

}  // namespace dsarctl
