#ifndef DSAR_COMMON_LOG_H_
#define DSAR_COMMON_LOG_H_

// One log line per call on stderr, for dsard, dsar-worker and dsar-gateway
// (docs/operations.md, "Logs"). Two formats, chosen once at start-up:
//   text: "<program>: <message>", with "WARNING: ", "ERROR: ", "ALERT: " or
//         "FATAL: " before the message for those levels (the lines the
//         programs always printed);
//   json: one object per line: {"time","level","program","message"} plus
//         "request_id" and "task_id" when the call names them.
// A message never holds a subject's identity (email, name, phone, account
// numbers): name requests and tasks by id, stores by name. Thread-safe: a
// line is written with one call, so lines of different threads never mix.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dsar {

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarning, kError, kAlert, kFatal };

// "text" or "json"; INVALID_ARGUMENT naming the flag otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Sets the program name and format of every later line; in json format
// gRPC's own log lines go through Log too. Call in main before threads
// start (until then: text, program "dsar").
void InitLogging(absl::string_view program, LogFormat format);

// Ids a line is about; empty ones are left out.
struct LogIds {
  std::string request_id;
  std::string task_id;
};
inline LogIds ForRequest(std::string request_id) {
  return LogIds{std::move(request_id), ""};
}
inline LogIds ForTask(std::string request_id, std::string task_id) {
  return LogIds{std::move(request_id), std::move(task_id)};
}

// Writes one line. In text format the ids are not repeated (messages name
// what they are about); in json format they are fields of their own.
void Log(LogLevel level, absl::string_view message, const LogIds& ids = {});
inline void LogInfo(absl::string_view message, const LogIds& ids = {}) {
  Log(LogLevel::kInfo, message, ids);
}
inline void LogWarning(absl::string_view message, const LogIds& ids = {}) {
  Log(LogLevel::kWarning, message, ids);
}
inline void LogError(absl::string_view message, const LogIds& ids = {}) {
  Log(LogLevel::kError, message, ids);
}

// The line Log writes (with its final newline), for tests. `unix_micros`
// is the time it carries.
std::string FormatLogLine(LogFormat format, absl::string_view program,
                          int64_t unix_micros, LogLevel level,
                          absl::string_view message, const LogIds& ids);

}  // namespace dsar

#endif  // DSAR_COMMON_LOG_H_
