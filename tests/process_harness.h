#ifndef DSAR_TESTS_PROCESS_HARNESS_H_
#define DSAR_TESTS_PROCESS_HARNESS_H_

// Runs real programs as child processes for integration tests: spawn, signal,
// reap, wait for the files and gRPC ports they publish. Nothing here sleeps a
// fixed time to synchronise; every wait is for a condition, under a deadline.

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dsar::testing {

// A fresh directory, removed with its contents on destruction unless the
// environment sets DSAR_KEEP_TEST_DIRS (then its path is printed instead).
class TempDir {
 public:
  // Creates a directory under $TEST_TMPDIR, $TMPDIR or /tmp whose name starts
  // with `prefix`. Aborts the test binary if that fails (nothing can run).
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(const std::string& name) const;

 private:
  std::string path_;
};

// One child process. It runs in its own process group, with stdin from
// /dev/null and stdout and stderr appended to a log file. The destructor
// kills (SIGKILL) and reaps it if it is still running, so a failing test
// leaves no processes behind.
class Process {
 public:
  // fork/execv `binary` with `args` (argv[1..]); the log file is created or
  // appended to. Fails with the errno text when the log cannot be opened or
  // fork fails; a failed exec shows as exit code 127 with a line in the log.
  static absl::StatusOr<std::unique_ptr<Process>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // True until the process has been reaped. Reaps it if it has exited.
  bool Running();
  // Waits up to `timeout` for the process to exit. Returns its exit code
  // (128 + signal number when a signal ended it), or std::nullopt if it is
  // still running at the deadline.
  std::optional<int> WaitForExit(absl::Duration timeout);
  // SIGKILLs the process group and reaps the process. Returns the exit code
  // as WaitForExit does (normally 128 + 9); no-op when already reaped.
  int Kill();
  // SIGTERMs the process group and waits up to `grace` for it to exit, then
  // falls back to Kill(). Returns the exit code.
  int Terminate(absl::Duration grace = absl::Seconds(10));

 private:
  Process(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  // Records a wait status; returns the exit code.
  int Reaped(int wait_status);

  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;  // Set once reaped.
};

// Runs a program to completion. Returns its exit code, or DEADLINE_EXCEEDED
// (after killing it) if it runs longer than `timeout`. Output goes to
// `log_path`; read it back with ReadFileOrEmpty.
absl::StatusOr<int> RunToExit(const std::string& binary,
                              const std::vector<std::string>& args,
                              const std::string& log_path,
                              absl::Duration timeout);

// The file's contents, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// Polls until `path` exists and holds a complete line (a writer that renames
// the file into place, as dsard does, never shows a partial one), then
// returns that line as a port number. Stops early with FAILED_PRECONDITION
// when `process` (if given) exits first, DEADLINE_EXCEEDED at the deadline.
absl::StatusOr<int> WaitForPortFile(const std::string& path,
                                    absl::Duration timeout,
                                    Process* process = nullptr);

// Waits until `channel` is connected (the server accepts calls).
// DEADLINE_EXCEEDED if it is not within `timeout`.
absl::Status WaitForGrpcReady(const std::shared_ptr<grpc::Channel>& channel,
                              absl::Duration timeout);

// A loopback port that was free a moment ago, for a program whose URL must
// be written down before it starts (e.g. the gateway's public URL in its
// own flags or in an inventory). 0 when none could be had.
int ReserveLoopbackPort();

// The seed of a randomized test: the number in the environment variable
// `variable` when it is set (to rerun a failure), else one from the clock.
// Prints "<test> seed N (rerun with <variable>=N)".
uint64_t ChooseSeed(const char* test, const char* variable);

// An insecure channel to 127.0.0.1:port with its own connection (not shared
// with other channels) and reconnect back-off capped at 500 ms.
std::shared_ptr<grpc::Channel> LoopbackChannel(int port);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_PROCESS_HARNESS_H_
