#include "common/log.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

// Written once by InitLogging before threads start; read by every Log.
std::atomic<LogFormat> g_format{LogFormat::kText};
std::string* g_program = new std::string("dsar");

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kAlert:
      return "ALERT";
    case LogLevel::kFatal:
      return "FATAL";
  }
  return "INFO";
}

void LogGrpcLine(gpr_log_func_args* args) {
  LogLevel level = LogLevel::kInfo;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = LogLevel::kError;
  std::string message = absl::StrCat("grpc: ", args->message);
  Log(level, message);
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format: \"", name, "\" is neither text nor json"));
}

void InitLogging(absl::string_view program, LogFormat format) {
  *g_program = std::string(program);
  g_format = format;
  if (format == LogFormat::kJson) gpr_set_log_function(LogGrpcLine);
}

std::string FormatLogLine(LogFormat format, absl::string_view program,
                          int64_t unix_micros, LogLevel level,
                          absl::string_view message, const LogIds& ids) {
  if (format == LogFormat::kText) {
    return absl::StrCat(
        program, ": ",
        level == LogLevel::kInfo ? "" : absl::StrCat(LevelName(level), ": "),
        message, "\n");
  }
  nlohmann::ordered_json line;
  line["time"] =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ",
                       absl::FromUnixMicros(unix_micros), absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["program"] = std::string(program);
  line["message"] = std::string(message);
  if (!ids.request_id.empty()) line["request_id"] = ids.request_id;
  if (!ids.task_id.empty()) line["task_id"] = ids.task_id;
  // Bytes that are not UTF-8 become U+FFFD instead of an exception.
  return absl::StrCat(
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "\n");
}

void Log(LogLevel level, absl::string_view message, const LogIds& ids) {
  std::string line =
      FormatLogLine(g_format.load(), *g_program,
                    absl::ToUnixMicros(absl::Now()), level, message, ids);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace dsar
