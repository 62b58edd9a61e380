// dsar-real-path-bench: a load client for a running dsard (and its
// workers). Closed loop by default: it keeps --in_flight pre-verified ERASURE
// requests in flight,
// each for a distinct person of the sample stores (person<i>@example.com,
// tools/sample_stores.cc), and counts a request done when dsard's
// `completed` notification for it appears in --notify_file (dsard's
// --notify_file: one JSON object per line, fsynced before dsard moves on).
// Starts nothing: tools/bench starts dsard, the workers and the stores.
//
//   dsar-real-path-bench --addr=127.0.0.1:PORT --notify_file=FILE
//       --people=N [--first_person=1] [--in_flight=8] [--requests=1000]
//       [--warmup=100] [--runs=1] [--rate=0] [--deadline_seconds=0]
//       [--label=TEXT] [--watch_pids=PID,...]
//
// With --rate=R (requests/s) the load is an open loop instead: request i of
// a phase is due R⁻¹·i seconds after the phase starts, whatever the others
// do, sent by the first of --in_flight client threads that is free; its
// latencies count from when it was due, so a send delayed by a busy client
// counts against the system (no coordinated omission). That measures the
// create latency "at a load" of R requests/s rather than at saturation.
//
// People first_person .. first_person + warmup + runs * requests - 1 are
// used, each once: an erased person cannot be erased again, and a second
// request for a person still in flight would be linked to the first
// (Request.linked_to). Per run it prints requests/s (N / (first create call
// -> last completion seen)), latency p50/p99 (create call -> completion
// line seen) and create-call p50/p99; then one summary line with the
// medians of the runs:
//
//   real-path label=... in_flight=8 runs=3 n=1000 req/s=... p50_ms=...
//       p99_ms=... create_p50_ms=... create_p99_ms=... next_person=...
//
// A `failed`, `needs_attention` or `cancelled` notification for one of its
// requests, or a failed CreateRequest, aborts with exit status 1. With
// --deadline_seconds the whole invocation is bounded: past it, it prints
// `real-path ... timed_out=1 completed=M ...` and exits with status 3; with
// --watch_pids it aborts as soon as dsard or a worker is gone.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/mutex_mode.h"
#include "common/program_usage.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/bench_stats.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051",
          "dsard's gRPC address (plaintext, loopback).");
ABSL_FLAG(std::string, notify_file, "",
          "The file dsard appends notifications to (its --notify_file).");
ABSL_FLAG(int, people, 0,
          "People in the sample stores (dsar-sample-stores --people); the "
          "people this run needs must exist.");
ABSL_FLAG(int, first_person, 1,
          "First person used (person<first_person>@example.com); give each "
          "invocation against the same stores a range of its own.");
ABSL_FLAG(int, in_flight, 8, "Requests kept in flight (closed loop).");
ABSL_FLAG(int, requests, 1000, "Requests per measured run.");
ABSL_FLAG(int, warmup, 100, "Requests before the measured runs, not counted.");
ABSL_FLAG(int, runs, 1, "Measured runs; the summary gives their medians.");
ABSL_FLAG(double, rate, 0,
          "Open loop: send requests at this rate (per second), at most "
          "--in_flight at a time; 0: closed loop.");
ABSL_FLAG(double, deadline_seconds, 0,
          "Give up after this long in all (0: never); prints what completed "
          "and exits with status 3.");
ABSL_FLAG(std::string, watch_pids, "",
          "Comma-separated ids of processes the run depends on (dsard, the "
          "workers); when one is gone, abort instead of waiting forever.");
ABSL_FLAG(std::string, label, "",
          "Free text (no spaces) copied into every output line, e.g. "
          "stores=tmpfs.");

namespace dsar {
namespace {

using bench::Clock;

[[noreturn]] void Die(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "dsar-real-path-bench: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

double Millis(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

// Follows dsard's notification file from its end at construction (or from
// its start once it appears, when it does not exist yet) and remembers,
// per request id, the first terminal notification seen and when. Woken by
// inotify on the file; before the file exists it looks for it every
// millisecond.
class NotificationTail {
 public:
  struct Outcome {
    std::string kind;  // "completed", "failed", "needs_attention", ...
    std::string line;
    Clock::time_point seen;
  };

  // Starts the reader thread. Errors: the file exists but cannot be read.
  static absl::StatusOr<std::unique_ptr<NotificationTail>> Start(
      std::string path) {
    auto tail = std::unique_ptr<NotificationTail>(
        new NotificationTail(std::move(path)));
    tail->inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (tail->inotify_fd_ < 0) {
      return absl::InternalError(
          absl::StrCat("inotify_init1: ", std::strerror(errno)));
    }
    if (absl::Status opened = tail->TryOpen(/*from_end=*/true); !opened.ok()) {
      return opened;
    }
    tail->thread_ = std::thread([raw = tail.get()] { raw->Run(); });
    return tail;
  }

  ~NotificationTail() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
  }

  // Blocks until a terminal notification for `id` was seen and returns it
  // (and forgets it); DeadlineExceeded at `deadline`.
  absl::StatusOr<Outcome> Wait(const std::string& id, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto seen = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outcomes_.contains(id);
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&seen), deadline)) {
      return absl::DeadlineExceededError(absl::StrCat("no outcome for ", id));
    }
    auto it = outcomes_.find(id);
    Outcome outcome = std::move(it->second);
    outcomes_.erase(it);
    return outcome;
  }

 private:
  explicit NotificationTail(std::string path) : path_(std::move(path)) {}

  // Opens the file when it exists (positioned at its end with `from_end`).
  // OK when it does not exist yet.
  absl::Status TryOpen(bool from_end) {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return absl::UnavailableError(
          absl::StrCat("open ", path_, ": ", std::strerror(errno)));
    }
    if (from_end && ::lseek(fd, 0, SEEK_END) < 0) {
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("lseek ", path_, ": ", std::strerror(errno)));
    }
    if (inotify_add_watch(inotify_fd_, path_.c_str(), IN_MODIFY) < 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("inotify_add_watch ", path_,
                                                 ": ", std::strerror(errno)));
    }
    fd_ = fd;
    return absl::OkStatus();
  }

  void Run() {
    char events[4096];
    while (!stop_.load()) {
      if (fd_ < 0) {
        if (absl::Status opened = TryOpen(/*from_end=*/false); !opened.ok()) {
          Die(opened.ToString());
        }
        if (fd_ < 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
      }
      ReadNewLines();
      // Woken by the next write; the timeout only bounds how long a stop
      // request waits (and catches a missed event).
      pollfd waiting{inotify_fd_, POLLIN, 0};
      if (::poll(&waiting, 1, 50) > 0) {
        while (::read(inotify_fd_, events, sizeof(events)) > 0) {
        }
      }
    }
  }

  // Reads what was appended since the last call and records every terminal
  // notification in it.
  void ReadNewLines() {
    char buffer[1 << 16];
    while (true) {
      ssize_t n = ::read(fd_, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Die(absl::StrCat("read ", path_, ": ", std::strerror(errno)));
      if (n == 0) return;
      Clock::time_point now = Clock::now();
      partial_.append(buffer, static_cast<size_t>(n));
      size_t start = 0;
      std::vector<std::pair<std::string, Outcome>> found;
      for (size_t end; (end = partial_.find('\n', start)) != std::string::npos;
           start = end + 1) {
        std::string line = partial_.substr(start, end - start);
        nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
        if (json.is_discarded() || !json.is_object()) {
          Die(absl::StrCat(path_, ": not a JSON object: ", line));
        }
        std::string kind = json.value("kind", "");
        if (kind != "completed" && kind != "failed" &&
            kind != "needs_attention" && kind != "cancelled") {
          continue;
        }
        found.emplace_back(json.value("request_id", ""),
                           Outcome{std::move(kind), std::move(line), now});
      }
      partial_.erase(0, start);
      if (found.empty()) continue;
      absl::MutexLock lock(&mu_);
      // The first terminal outcome counts (a redelivery repeats it).
      for (auto& [id, outcome] : found) outcomes_.emplace(id, outcome);
    }
  }

  const std::string path_;
  int fd_ = -1;  // Reader thread only (and Start, before it runs).
  int inotify_fd_ = -1;
  std::string partial_;  // Reader thread only: bytes after the last newline.
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
};

// Whether process `pid` still runs: /proc/PID/stat exists and its state is
// not zombie (the script that started it may not have reaped it yet).
bool ProcessRuns(int pid) {
  absl::StatusOr<std::string> stat =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() &&
         (*stat)[close + 2] != 'Z';
}

// Aborts the program, from a thread of its own, once one of `pids` is gone.
void WatchProcesses(std::vector<int> pids) {
  if (pids.empty()) return;
  std::thread([pids = std::move(pids)] {
    while (true) {
      for (int pid : pids) {
        if (!ProcessRuns(pid)) {
          Die(absl::StrCat("process ", pid,
                           " (dsard or a worker) is gone; see its log"));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }).detach();
}

struct PhaseResult {
  int completed = 0;
  bool timed_out = false;
  // First create call -> last completion seen; when timed out, phase start
  // -> deadline.
  double seconds = 0;
  std::vector<double> latency_ms;
  std::vector<double> create_ms;
};

// Sends `count` requests for people first_person.. from `in_flight` client
// threads, each waiting for its request's completion line before it sends
// another: a closed loop, or with `rate` > 0 an open one (each request due
// at its time, its latencies counted from then).
PhaseResult RunPhase(v1::DsarService::Stub& stub, NotificationTail& tail,
                     int first_person, int count, int in_flight, double rate,
                     absl::Time deadline) {
  const Clock::time_point started = Clock::now();
  std::atomic<int> next{0};
  std::atomic<bool> timed_out{false};
  absl::Mutex mu;
  PhaseResult result;
  std::optional<Clock::time_point> first_create, last_completion;
  auto client = [&] {
    std::vector<double> latency_ms, create_ms;
    std::optional<Clock::time_point> first, last;
    while (!timed_out.load()) {
      int index = next.fetch_add(1);
      if (index >= count) break;
      int person = first_person + index;
      v1::CreateRequestRequest create;
      create.set_type(v1::ERASURE);
      v1::SubjectIdentity* identity = create.add_identities();
      identity->set_type(v1::EMAIL);
      identity->set_value(absl::StrCat("person", person, "@example.com"));
      create.mutable_verified()->set_method("logged_in_session");
      create.mutable_verified()->set_evidence_ref("dsar-real-path-bench");
      v1::Request created;
      grpc::ClientContext context;
      context.set_deadline(std::min(
          absl::ToChronoTime(deadline),
          std::chrono::system_clock::now() + std::chrono::seconds(60)));
      Clock::time_point sent = Clock::now();
      if (rate > 0) {
        Clock::time_point due =
            started + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(index / rate));
        // Pacing, not synchronisation: request `index` is due then.
        std::this_thread::sleep_until(due);
        sent = due;
      }
      grpc::Status status = stub.CreateRequest(&context, create, &created);
      Clock::time_point answered = Clock::now();
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
          absl::Now() >= deadline) {
        timed_out = true;
        break;
      }
      if (!status.ok()) {
        Die(absl::StrCat("CreateRequest for person", person, "@example.com: ",
                         status.error_code(), " ", status.error_message()));
      }
      absl::StatusOr<NotificationTail::Outcome> outcome =
          tail.Wait(created.id(), deadline);
      if (absl::IsDeadlineExceeded(outcome.status())) {
        timed_out = true;
        break;
      }
      if (outcome->kind != "completed") {
        Die(absl::StrCat("request ", created.id(), " (person", person,
                         "@example.com) ended ", outcome->kind, ": ",
                         outcome->line));
      }
      if (!first || sent < *first) first = sent;
      if (!last || outcome->seen > *last) last = outcome->seen;
      latency_ms.push_back(Millis(outcome->seen - sent));
      create_ms.push_back(Millis(answered - sent));
    }
    absl::MutexLock lock(&mu);
    result.latency_ms.insert(result.latency_ms.end(), latency_ms.begin(),
                             latency_ms.end());
    result.create_ms.insert(result.create_ms.end(), create_ms.begin(),
                            create_ms.end());
    if (first && (!first_create || *first < *first_create)) {
      first_create = first;
    }
    if (last && (!last_completion || *last > *last_completion)) {
      last_completion = last;
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < in_flight; ++i) clients.emplace_back(client);
  for (std::thread& thread : clients) thread.join();
  result.completed = static_cast<int>(result.latency_ms.size());
  result.timed_out = timed_out.load();
  if (result.timed_out) {
    // What completed over the whole time it had, not up to its last
    // completion.
    result.seconds =
        std::chrono::duration<double>(Clock::now() - started).count();
  } else if (first_create && last_completion) {
    result.seconds =
        std::chrono::duration<double>(*last_completion - *first_create).count();
  }
  return result;
}

int Main() {
  const std::string notify_file = absl::GetFlag(FLAGS_notify_file);
  const int people = absl::GetFlag(FLAGS_people);
  const int first_person = absl::GetFlag(FLAGS_first_person);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const int requests = absl::GetFlag(FLAGS_requests);
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup));
  const int runs = absl::GetFlag(FLAGS_runs);
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string label = absl::GetFlag(FLAGS_label);
  if (notify_file.empty()) Die("--notify_file is required");
  if (people < 1) Die("--people (people in the sample stores) is required");
  if (first_person < 1 || in_flight < 1 || requests < 1 || runs < 1) {
    Die("--first_person, --in_flight, --requests and --runs must be >= 1");
  }
  if (!(rate >= 0)) Die("--rate must be >= 0 (0: closed loop)");
  const int64_t needed = int64_t{warmup} + int64_t{runs} * requests;
  const int64_t last_person = first_person + needed - 1;
  if (last_person > people) {
    Die(absl::StrCat("needs people ", first_person, "..", last_person, " (",
                     needed,
                     " requests, one person each) but the sample stores hold ",
                     people, ": generate them with --people=", last_person,
                     " or ask for fewer requests"));
  }
  absl::Time deadline = absl::InfiniteFuture();
  if (absl::GetFlag(FLAGS_deadline_seconds) > 0) {
    deadline =
        absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_deadline_seconds));
  }

  std::vector<int> watched;
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_watch_pids),
                                               ',', absl::SkipEmpty())) {
    int pid = 0;
    if (!absl::SimpleAtoi(text, &pid) || pid <= 0) {
      Die(absl::StrCat("--watch_pids: not a process id: ", text));
    }
    watched.push_back(pid);
  }
  WatchProcesses(std::move(watched));

  absl::StatusOr<std::unique_ptr<NotificationTail>> tail =
      NotificationTail::Start(notify_file);
  if (!tail.ok()) Die(tail.status().ToString());
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_addr),
                                     grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::seconds(10))) {
    Die(absl::StrCat("cannot connect to ", absl::GetFlag(FLAGS_addr)));
  }
  std::unique_ptr<v1::DsarService::Stub> stub =
      v1::DsarService::NewStub(channel);
  const std::string prefix = absl::StrCat(
      "real-path", label.empty() ? "" : absl::StrCat(" label=", label),
      " in_flight=", in_flight,
      rate > 0 ? absl::StrCat(" rate=", rate) : std::string());

  auto timed_out = [&](const char* phase, const PhaseResult& result,
                       int count) {
    std::printf(
        "%s phase=%s timed_out=1 completed=%d of %d req/s=%.3f (partial)\n",
        prefix.c_str(), phase, result.completed, count,
        result.seconds > 0 ? result.completed / result.seconds : 0.0);
    std::fflush(stdout);
    std::_Exit(3);
  };

  int person = first_person;
  if (warmup > 0) {
    PhaseResult result =
        RunPhase(*stub, **tail, person, warmup, in_flight, rate, deadline);
    if (result.timed_out) timed_out("warmup", result, warmup);
    std::printf("%s warmup n=%d req/s=%.1f (not counted)\n", prefix.c_str(),
                warmup, warmup / result.seconds);
    std::fflush(stdout);
    person += warmup;
  }
  std::vector<double> rates, p50, p99, create_p50, create_p99;
  for (int run = 1; run <= runs; ++run) {
    PhaseResult result =
        RunPhase(*stub, **tail, person, requests, in_flight, rate, deadline);
    if (result.timed_out) timed_out("run", result, requests);
    person += requests;
    rates.push_back(requests / result.seconds);
    p50.push_back(bench::Quantile(result.latency_ms, 0.50));
    p99.push_back(bench::Quantile(result.latency_ms, 0.99));
    create_p50.push_back(bench::Quantile(result.create_ms, 0.50));
    create_p99.push_back(bench::Quantile(result.create_ms, 0.99));
    std::printf(
        "%s run=%d n=%d req/s=%.1f p50_ms=%.2f p99_ms=%.2f create_p50_ms=%.2f "
        "create_p99_ms=%.2f\n",
        prefix.c_str(), run, requests, rates.back(), p50.back(), p99.back(),
        create_p50.back(), create_p99.back());
    std::fflush(stdout);
  }
  std::printf(
      "%s runs=%d n=%d req/s=%.1f p50_ms=%.2f p99_ms=%.2f create_p50_ms=%.2f "
      "create_p99_ms=%.2f next_person=%d\n",
      prefix.c_str(), runs, requests, bench::Median(rates), bench::Median(p50),
      bench::Median(p99), bench::Median(create_p50), bench::Median(create_p99),
      person);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  dsar::SetProgramUsage(
      "Closed-loop (or, with --rate, open-loop) ERASURE load against a "
      "running dsard; a request is done when its `completed` notification is "
      "in --notify_file.\n"
      "  dsar-real-path-bench --addr=HOST:PORT --notify_file=FILE --people=N "
      "[--first_person=1] [--in_flight=8] [--requests=1000] [--warmup=100] "
      "[--runs=1] [--rate=0] [--deadline_seconds=0] [--label=TEXT]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  return dsar::Main();
}
