#include "tests/process_harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace dsar::testing {
namespace {

// How often waits re-check their condition.
constexpr absl::Duration kPollInterval = absl::Milliseconds(5);

std::string ErrnoText(const std::string& what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
  if (base == nullptr || *base == '\0') base = "/tmp";
  std::string pattern = absl::StrCat(base, "/", prefix, "-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  if (std::getenv("DSAR_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "kept test directory %s\n", path_.c_str());
    return;
  }
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string TempDir::Join(const std::string& name) const {
  return absl::StrCat(path_, "/", name);
}

absl::StatusOr<std::unique_ptr<Process>> Process::Start(
    const std::string& binary, const std::vector<std::string>& args,
    const std::string& log_path) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls are allowed (the test process has gRPC threads).
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  static const char kExecFailed[] = "process_harness: execv failed\n";

  int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(ErrnoText(log_path));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return absl::InternalError(ErrnoText("/dev/null"));
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    close(null_fd);
    return absl::InternalError(ErrnoText("fork"));
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    // The dup2 copies do not inherit O_CLOEXEC; the originals close on exec.
    execv(argv[0], argv.data());
    ssize_t ignored =
        write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    (void)ignored;
    _exit(127);
  }
  // Also set the group from the parent, so a signal sent right after Start
  // returns cannot miss it (whichever of the two setpgid calls runs first).
  setpgid(pid, pid);
  close(log_fd);
  close(null_fd);
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() {
  if (!exit_code_.has_value()) Kill();
}

int Process::Reaped(int wait_status) {
  int code = WIFEXITED(wait_status)     ? WEXITSTATUS(wait_status)
             : WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status)
                                        : 255;
  exit_code_ = code;
  return code;
}

bool Process::Running() {
  if (exit_code_.has_value()) return false;
  int wait_status = 0;
  pid_t reaped = waitpid(pid_, &wait_status, WNOHANG);
  if (reaped == pid_) {
    Reaped(wait_status);
    return false;
  }
  return true;
}

std::optional<int> Process::WaitForExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(kPollInterval);
  }
  return exit_code_;
}

int Process::Kill() {
  if (exit_code_.has_value()) return *exit_code_;
  kill(-pid_, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
  }
  return Reaped(wait_status);
}

int Process::Terminate(absl::Duration grace) {
  if (exit_code_.has_value()) return *exit_code_;
  kill(-pid_, SIGTERM);
  std::optional<int> code = WaitForExit(grace);
  return code.has_value() ? *code : Kill();
}

absl::StatusOr<int> RunToExit(const std::string& binary,
                              const std::vector<std::string>& args,
                              const std::string& log_path,
                              absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(binary, args, log_path);
  if (!process.ok()) return process.status();
  std::optional<int> code = (*process)->WaitForExit(timeout);
  if (!code.has_value()) {
    (*process)->Kill();
    return absl::DeadlineExceededError(absl::StrCat(
        binary, " still running after ", absl::FormatDuration(timeout)));
  }
  return *code;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<int> WaitForPortFile(const std::string& path,
                                    absl::Duration timeout, Process* process) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string text = ReadFileOrEmpty(path);
    if (!text.empty() && text.back() == '\n') {
      int port = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) ||
          port <= 0 || port > 65535) {
        return absl::DataLossError(
            absl::StrCat(path, ": not a port number: \"", text, "\""));
      }
      return port;
    }
    if (process != nullptr && !process->Running()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process ", process->pid(), " exited before writing ", path, "; log ",
          process->log_path(), ":\n", ReadFileOrEmpty(process->log_path())));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no port in ", path, " after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status WaitForGrpcReady(const std::shared_ptr<grpc::Channel>& channel,
                              absl::Duration timeout) {
  if (channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "gRPC channel not connected after ", absl::FormatDuration(timeout)));
}

std::shared_ptr<grpc::Channel> LoopbackChannel(int port) {
  grpc::ChannelArguments args;
  // A private subchannel: otherwise channels to the same address share one,
  // and a new channel inherits the reconnect back-off another channel built
  // up while the server was down, so readiness would lag the server.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Servers under test restart often; reconnect promptly when they do.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

uint64_t ChooseSeed(const char* test, const char* variable) {
  const char* text = std::getenv(variable);
  uint64_t seed = 0;
  if (text == nullptr || !absl::SimpleAtoi(text, &seed)) {
    seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  }
  std::printf("%s seed %llu (rerun with %s=%llu)\n", test,
              static_cast<unsigned long long>(seed), variable,
              static_cast<unsigned long long>(seed));
  return seed;
}

int ReserveLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace dsar::testing
