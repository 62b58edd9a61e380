#ifndef DSAR_TOOLS_DSARCTL_OUTPUT_H_
#define DSAR_TOOLS_DSARCTL_OUTPUT_H_

// Output for people (aligned tables, colour on a terminal) and for scripts
// (JSON with proto field names, YAML of the same tree).

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {

// JSON trees keep the order of their keys (proto field order).
using Json = nlohmann::ordered_json;

enum class Color { kNone, kGreen, kRed, kYellow, kCyan, kDim, kBold };

// `text` wrapped in the colour's ANSI codes when options.color, else as is.
std::string Paint(const Options& options, const std::string& text, Color color);
// The colour of a request or step status name ("COMPLETED" green ...).
Color StatusColor(const std::string& status);

// An aligned table: columns as wide as their widest cell, two spaces apart,
// headers in bold on a terminal. Colour never changes the alignment.
class Table {
 public:
  struct Cell {
    std::string text;
    Color color = Color::kNone;
    Cell(std::string t) : text(std::move(t)) {}  // NOLINT: cells from text.
    Cell(const char* t) : text(t) {}             // NOLINT
    Cell(std::string t, Color c) : text(std::move(t)), color(c) {}
  };

  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<Cell> row);
  bool empty() const { return rows_.empty(); }
  // Prints to stdout; trailing spaces of the last column are trimmed.
  void Print(const Options& options) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// The message in the protobuf JSON mapping with proto field names; pretty
// (two-space indent) or on one line.
std::string MessageToJson(const google::protobuf::Message& message,
                          bool pretty = true, bool emit_defaults = false);
// The message as a JSON tree (for adding fields, or YAML output).
Json MessageToTree(const google::protobuf::Message& message,
                   bool emit_defaults = false);

// YAML 1.2 of a JSON tree: block style, strings quoted whenever a plain
// scalar would read back as something else.
std::string JsonToYaml(const Json& value);

// Prints `value` as options.output says ("json" pretty, "yaml"), with a
// final newline. Only for the json and yaml formats.
void PrintTree(const Options& options, const Json& value);
// Same for a message.
void PrintMessage(const Options& options,
                  const google::protobuf::Message& message,
                  bool emit_defaults = false);

// "2024-05-01 12:00:03" (UTC) or "-" for an unset time.
std::string FormatTimestamp(const google::protobuf::Timestamp& time);
absl::Time ToAbslTime(const google::protobuf::Timestamp& time);
// A short age: "4s", "3m12s", "2h5m", "3d4h".
std::string FormatAge(absl::Duration age);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_OUTPUT_H_
