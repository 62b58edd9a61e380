#include "tools/dsarctl/config.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace dsarctl {
namespace {

absl::Status ParseBool(const std::string& name, const std::string& value,
                       bool* out) {
  std::string lower = absl::AsciiStrToLower(value);
  if (lower == "" || lower == "true" || lower == "1" || lower == "yes") {
    *out = true;
  } else if (lower == "false" || lower == "0" || lower == "no") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected true or false, got \"", value, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplySetting(const std::string& raw_name, const std::string& value,
                          Options* options) {
  const std::string name = absl::StrReplaceAll(raw_name, {{"_", "-"}});
  if (name == "addr") {
    if (value.empty()) return absl::InvalidArgumentError("addr: empty address");
    options->addr = value;
  } else if (name == "tls") {
    return ParseBool(name, value, &options->tls);
  } else if (name == "ca-cert") {
    options->ca_cert = value;
  } else if (name == "client-cert") {
    options->client_cert = value;
  } else if (name == "client-key") {
    options->client_key = value;
  } else if (name == "timeout") {
    double seconds = 0;
    if (!absl::SimpleAtod(value, &seconds) || seconds <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("timeout: expected a positive number of seconds, got \"",
                       value, "\""));
    }
    options->timeout_seconds = seconds;
  } else if (name == "output") {
    if (value != "table" && value != "json" && value != "yaml") {
      return absl::InvalidArgumentError(absl::StrCat(
          "output: expected table, json or yaml, got \"", value, "\""));
    }
    options->output = value;
  } else if (name == "pubkey") {
    options->pubkey = value;
  } else if (name == "header") {
    size_t colon = value.find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("header: expected KEY:VALUE, got \"", value, "\""));
    }
    options->headers.emplace_back(absl::AsciiStrToLower(value.substr(0, colon)),
                                  std::string(absl::StripLeadingAsciiWhitespace(
                                      value.substr(colon + 1))));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown setting \"", raw_name, "\""));
  }
  return absl::OkStatus();
}

std::string ConfigPath(const std::string& flag_path, bool* required) {
  *required = true;
  if (!flag_path.empty()) return flag_path;
  if (const char* env = std::getenv("DSARCTL_CONFIG"); env && *env) return env;
  *required = false;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return absl::StrCat(xdg, "/dsarctl/config");
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return absl::StrCat(home, "/.config/dsarctl/config");
  }
  return "";
}

absl::Status ApplyConfigFile(const std::string& path, bool required,
                             Options* options) {
  if (path.empty()) return absl::OkStatus();
  std::error_code error;
  if (!required && !std::filesystem::exists(path, error)) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> text = dsar::ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": ", text.status().message()));
  }
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(*text, '\n')) {
    ++number;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line.front() == '#') continue;
    size_t equals = line.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", number, ": expected key = value, got \"", line, "\""));
    }
    std::string key(absl::StripAsciiWhitespace(line.substr(0, equals)));
    std::string value(absl::StripAsciiWhitespace(line.substr(equals + 1)));
    absl::Status applied = ApplySetting(key, value, options);
    if (!applied.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", applied.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckConnectionSettings(const Options& options) {
  if (options.client_cert.empty() != options.client_key.empty()) {
    return absl::InvalidArgumentError(
        "--client_cert and --client_key go together");
  }
  for (const std::string& path :
       {options.ca_cert, options.client_cert, options.client_key}) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> text = dsar::ReadFile(path);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", path, ": ", text.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace dsarctl
