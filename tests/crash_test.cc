// The acceptance test for durability: dsard is SIGKILLed at random moments
// while requests are being submitted and worked on, and restarted on the same
// port and data directory each time. Every acknowledged request must survive
// exactly once and finish, and every request's event history must show that
// no task was completed under a stale lease. The audit log must verify after
// every restart, extend the checkpoint saved before each kill, and end with
// exactly one entry per event.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

constexpr int kPeople = 400;
constexpr int kRequests = 200;
constexpr int kMinKills = 5;
constexpr int kMaxKills = 12;
constexpr double kLeaseSeconds = 2;
// How long the whole run may take to settle after the last restart.
constexpr absl::Duration kSettleTimeout = absl::Minutes(3);
// Submissions are spread over about kRequests * kMaxSubmitPause / 2, so that
// several kills land while requests are still being created.
constexpr absl::Duration kMaxSubmitPause = absl::Milliseconds(30);
// How long the submitter keeps retrying one request before giving up.
constexpr absl::Duration kSubmitTimeout = absl::Minutes(2);

// Listings are read in pages of this size, so paging is exercised too.
constexpr int kSmallPage = 7;

struct Submission {
  v1::CreateRequestRequest request;
  std::string id;     // Set once acknowledged.
  std::string error;  // Set when given up on.
  int attempts = 0;
};

// Creates every submission in order, retrying each with the same
// idempotency key for as long as the coordinator is down. A random pause of
// up to `max_pause` before each one spreads the submissions over the kills
// (a load shape, not synchronisation: nothing waits for anything).
void SubmitAll(int port, uint64_t seed, absl::Duration max_pause,
               std::vector<Submission>* submissions) {
  auto stub = v1::DsarService::NewStub(LoopbackChannel(port));
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<int64_t> pause_us(
      0, absl::ToInt64Microseconds(max_pause));
  for (Submission& submission : *submissions) {
    absl::SleepFor(absl::Microseconds(pause_us(random)));
    absl::Time give_up = absl::Now() + kSubmitTimeout;
    while (true) {
      ++submission.attempts;
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
      v1::Request created;
      grpc::Status status =
          stub->CreateRequest(&context, submission.request, &created);
      if (status.ok()) {
        submission.id = created.id();
        break;
      }
      bool retryable =
          status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
          status.error_code() == grpc::StatusCode::CANCELLED;
      if (!retryable || absl::Now() >= give_up) {
        submission.error =
            absl::StrCat(status.error_code(), ": ", status.error_message());
        break;
      }
    }
  }
}

// Runs `dsarctl audit <args>` against the coordinator on `port`; returns the
// exit code (-1 when it could not be run) and its output in `output`.
int RunAudit(int port, std::vector<std::string> args, const std::string& log,
             std::string* output) {
  args.insert(args.begin(), {absl::StrCat("--addr=127.0.0.1:", port), "audit"});
  std::error_code error;
  std::filesystem::remove(log, error);
  absl::StatusOr<int> code =
      RunToExit(DsarctlPath(), args, log, absl::Seconds(120));
  *output = code.ok() ? ReadFileOrEmpty(log) : code.status().ToString();
  return code.ok() ? *code : -1;
}

// Checks the audit log with `dsarctl audit verify`, against the checkpoint
// saved in `since` when it is not empty, then saves the latest checkpoint
// to `save`. Verification may overlap commits: it checks everything up to
// the signed checkpoint it fetched first. Returns the problems found.
std::vector<std::string> VerifyAuditAndSave(int port,
                                            const std::string& public_key,
                                            const std::string& since,
                                            const std::string& save,
                                            const std::string& log) {
  std::vector<std::string> problems;
  std::vector<std::string> args = {"verify",
                                   absl::StrCat("--pubkey=", public_key)};
  if (!since.empty()) args.push_back(absl::StrCat("--since=", since));
  std::string output;
  int code = RunAudit(port, args, log, &output);
  if (code != 0 || output.find("audit log verified") == std::string::npos ||
      (!since.empty() && output.find("consistent with the saved checkpoint") ==
                             std::string::npos)) {
    problems.push_back(
        absl::StrCat("dsarctl audit verify exited ", code, ": ", output));
  }
  // Only a verified checkpoint is saved, so --save needs the key.
  code = RunAudit(port,
                  {"checkpoint", absl::StrCat("--save=", save),
                   absl::StrCat("--pubkey=", public_key)},
                  log, &output);
  if (code != 0) {
    problems.push_back(
        absl::StrCat("dsarctl audit checkpoint exited ", code, ": ", output));
  }
  return problems;
}

// The size of a signed checkpoint note (its second line); nullopt when the
// note is malformed.
std::optional<uint64_t> CheckpointSize(const std::string& note) {
  std::vector<std::string> lines = absl::StrSplit(note, '\n');
  uint64_t size = 0;
  if (lines.size() < 3 || !absl::SimpleAtoi(lines[1], &size)) {
    return std::nullopt;
  }
  return size;
}

// Checks the invariants of one request's event history; returns the problems
// found (empty when it is sound).
std::vector<std::string> CheckHistory(const std::vector<v1::Event>& events) {
  std::vector<std::string> problems;
  int terminal = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const v1::Event& event = events[i];
    if (event.sequence() != i + 1) {
      problems.push_back(absl::StrCat("event ", i, " has sequence ",
                                      event.sequence(), ", want ", i + 1));
    }
    if (event.kind() == "completed" || event.kind() == "failed" ||
        event.kind() == "cancelled") {
      ++terminal;
      if (i + 1 != events.size()) {
        problems.push_back(absl::StrCat("terminal event ", event.kind(),
                                        " at sequence ", event.sequence(),
                                        " is not the last"));
      }
    }
  }
  if (terminal != 1) {
    problems.push_back(absl::StrCat(terminal, " terminal events, want 1"));
  }

  // Worker tasks are keyed by (Map state, iterator state, store); the Map
  // state is the top-level state entered last. Built-in tasks (no store)
  // are started, not leased.
  std::string current_state;
  std::map<std::tuple<std::string, std::string, std::string>, uint32_t>
      last_leased;
  std::map<std::pair<std::string, std::string>, int> completions;
  std::map<std::string, uint32_t> last_started;
  for (const v1::Event& event : events) {
    if (event.kind() == "state_entered") {
      current_state = event.state();
    } else if (event.kind() == "task_leased") {
      last_leased[{current_state, event.state(), event.store()}] =
          event.attempt();
    } else if (event.kind() == "task_started") {
      last_started[event.state()] = event.attempt();
    } else if (event.kind() == "task_completed" && event.store().empty()) {
      auto started = last_started.find(event.state());
      if (started == last_started.end() || started->second != event.attempt()) {
        problems.push_back(
            absl::StrCat("built-in task ", event.state(), " completed attempt ",
                         event.attempt(), " at sequence ", event.sequence(),
                         " but the last started attempt is ",
                         started == last_started.end() ? 0 : started->second));
      }
    } else if (event.kind() == "task_completed") {
      auto leased =
          last_leased.find({current_state, event.state(), event.store()});
      if (leased == last_leased.end() || leased->second != event.attempt()) {
        problems.push_back(absl::StrCat(
            "task ", current_state, "/", event.state(), "/", event.store(),
            " completed attempt ", event.attempt(), " at sequence ",
            event.sequence(), " but the last leased attempt is ",
            leased == last_leased.end() ? 0 : leased->second));
      }
      int count = ++completions[{current_state, event.store()}];
      if (count > 1) {
        problems.push_back(absl::StrCat("store ", event.store(), " in ",
                                        current_state, " completed ", count,
                                        " times"));
      }
    }
  }
  return problems;
}

// The checker itself: a history with a completion under a stale lease, a
// second completion and a gap in the sequence must not pass.
TEST(CrashTest, CheckHistoryFlagsBrokenHistories) {
  auto event = [](uint64_t sequence, const std::string& kind,
                  const std::string& state, const std::string& store,
                  uint32_t attempt) {
    v1::Event e;
    e.set_sequence(sequence);
    e.set_kind(kind);
    e.set_state(state);
    e.set_store(store);
    e.set_attempt(attempt);
    return e;
  };
  std::vector<v1::Event> sound = {
      event(1, "received", "", "", 0),
      event(2, "state_entered", "ExportStores", "", 0),
      event(3, "task_leased", "Export", "orders", 1),
      event(4, "lease_expired", "Export", "orders", 1),
      event(5, "task_leased", "Export", "orders", 2),
      event(6, "task_completed", "Export", "orders", 2),
      event(7, "completed", "", "", 0)};
  EXPECT_TRUE(CheckHistory(sound).empty());

  std::vector<v1::Event> stale = sound;
  stale[5].set_attempt(1);
  EXPECT_EQ(CheckHistory(stale).size(), 1u);

  std::vector<v1::Event> twice = sound;
  twice.insert(twice.begin() + 6,
               event(7, "task_completed", "Export", "orders", 2));
  twice.back().set_sequence(8);
  EXPECT_EQ(CheckHistory(twice).size(), 1u);

  std::vector<v1::Event> gap = sound;
  gap.erase(gap.begin() + 3);
  EXPECT_FALSE(CheckHistory(gap).empty());

  std::vector<v1::Event> not_last = sound;
  not_last.push_back(event(8, "task_leased", "Export", "orders", 3));
  EXPECT_EQ(CheckHistory(not_last).size(), 1u);
}

TEST(CrashTest, AcknowledgedRequestsSurviveRepeatedCoordinatorKills) {
  const uint64_t seed = ChooseSeed("crash_test", "DSAR_CRASH_TEST_SEED");
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 random(seed);
  absl::Time started = absl::Now();

  TempDir dir("dsar-crash");
  absl::StatusOr<std::string> inventory =
      GenerateSampleStores(dir.Join("stores"), kPeople);
  ASSERT_TRUE(inventory.ok()) << inventory.status();

  DsardOptions options;
  options.data_dir = dir.Join("data");
  options.inventory = *inventory;
  options.lease_seconds = kLeaseSeconds;
  absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  options.port = dsard->port;  // Every restart serves the same port.

  std::vector<std::unique_ptr<Process>> workers;
  for (const char* id : {"crash-worker-1", "crash-worker-2"}) {
    WorkerOptions worker;
    worker.coordinator_port = options.port;
    worker.inventory = *inventory;
    worker.worker_id = id;
    worker.concurrency = 4;
    worker.poll_wait_ms = 1000;
    absl::StatusOr<std::unique_ptr<Process>> process =
        StartWorker(worker, dir.path());
    ASSERT_TRUE(process.ok()) << process.status();
    workers.push_back(std::move(*process));
  }

  // Different people for every request, so an erasure never races an access
  // of the same subject; the key is unique per request and per run.
  std::vector<Submission> submissions(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    submissions[i].request =
        RequestForEmail(i % 2 == 0 ? v1::ACCESS : v1::ERASURE,
                        absl::StrCat("person", i + 1, "@example.com"),
                        absl::StrCat("crash-", seed, "-", i));
    // Attested by the caller, so no request waits in VERIFYING.
    submissions[i].request.mutable_verified()->set_method("logged_in_session");
    submissions[i].request.mutable_verified()->set_evidence_ref(
        absl::StrCat("crash-test-", i));
  }
  std::atomic<bool> submitted{false};
  std::thread submitter([&] {
    SubmitAll(options.port, seed + 1, kMaxSubmitPause, &submissions);
    submitted = true;
  });

  // The killer: a random pause, SIGKILL, restart; at least kMinKills times,
  // and on until every submission has been answered.
  std::uniform_int_distribution<int> pause_ms(100, 700);
  const std::string public_key = dir.Join("data/keys/checkpoint.key.pub");
  std::string saved_checkpoint;  // Empty until the first restart.
  int audit_checks = 0;
  int kills = 0;
  absl::Duration downtime;
  while (kills < kMinKills || (!submitted && kills < kMaxKills)) {
    absl::SleepFor(absl::Milliseconds(pause_ms(random)));
    dsard->process->Kill();
    ++kills;
    absl::Time down = absl::Now();
    absl::StatusOr<RunningDsard> restarted = StartDsard(options, dir.path());
    if (!restarted.ok()) {
      submitter.join();
      FAIL() << "restart " << kills << " failed: " << restarted.status();
    }
    downtime += absl::Now() - down;
    dsard = std::move(restarted);
    // After every restart the log verifies and still extends the checkpoint
    // saved before the kill: a crash neither lost nor rewrote a committed
    // entry. Then save the checkpoint the next restart is checked against.
    std::string save = dir.Join(absl::StrCat("checkpoint-", kills));
    for (const std::string& problem :
         VerifyAuditAndSave(options.port, public_key, saved_checkpoint, save,
                            dir.Join("dsarctl-audit.log"))) {
      ADD_FAILURE() << "after restart " << kills << ": " << problem;
    }
    ++audit_checks;
    saved_checkpoint = save;
  }
  submitter.join();
  absl::Time last_restart = absl::Now();
  std::printf(
      "crash_test: %d kills, %s total downtime, submissions done %s "
      "after start\n",
      kills, absl::FormatDuration(downtime).c_str(),
      absl::FormatDuration(last_restart - started).c_str());

  std::set<std::string> acknowledged;
  int submit_attempts = 0;
  for (const Submission& submission : submissions) {
    submit_attempts += submission.attempts;
    EXPECT_TRUE(submission.error.empty())
        << submission.request.idempotency_key() << ": " << submission.error;
    if (!submission.id.empty()) {
      EXPECT_TRUE(acknowledged.insert(submission.id).second)
          << "two keys acknowledged with the same id " << submission.id;
    }
  }
  std::printf("crash_test: %d create calls for %d requests\n", submit_attempts,
              kRequests);
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kRequests));

  auto stub = v1::DsarService::NewStub(LoopbackChannel(options.port));
  std::vector<v1::Request> listed;
  absl::Time deadline = last_restart + kSettleTimeout;
  while (true) {
    absl::StatusOr<std::vector<v1::Request>> all = ListAllRequests(*stub);
    ASSERT_TRUE(all.ok()) << all.status();
    listed = std::move(*all);
    size_t open = std::count_if(listed.begin(), listed.end(),
                                [](const v1::Request& request) {
                                  return !IsTerminal(request.status());
                                });
    if (open == 0 && listed.size() >= acknowledged.size()) break;
    ASSERT_LT(absl::Now(), deadline)
        << open << " of " << listed.size()
        << " requests still not terminal; logs in " << dir.path();
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::printf("crash_test: all terminal %s after the last restart\n",
              absl::FormatDuration(absl::Now() - last_restart).c_str());

  // Exactly the acknowledged requests, each once, also when listed in small
  // pages.
  absl::StatusOr<std::vector<v1::Request>> paged =
      ListAllRequests(*stub, kSmallPage);
  ASSERT_TRUE(paged.ok()) << paged.status();
  listed = std::move(*paged);
  std::set<std::string> listed_ids;
  for (const v1::Request& request : listed) {
    EXPECT_TRUE(listed_ids.insert(request.id()).second)
        << "listed twice: " << request.id();
  }
  EXPECT_EQ(listed.size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(listed_ids, acknowledged);

  int lease_expiries = 0, releases = 0;
  for (const Submission& submission : submissions) {
    SCOPED_TRACE(absl::StrCat(submission.id, " (",
                              submission.request.idempotency_key(), ")"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetRequestRequest get;
    get.set_id(submission.id);
    v1::Request request;
    grpc::Status status = stub->GetRequest(&context, get, &request);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(request.status(), v1::COMPLETED) << request.ShortDebugString();
    EXPECT_EQ(request.idempotency_key(), submission.request.idempotency_key());

    absl::StatusOr<std::vector<v1::Event>> events =
        ListAllEvents(*stub, submission.id, kSmallPage);
    ASSERT_TRUE(events.ok()) << events.status();
    for (const v1::Event& event : *events) {
      lease_expiries += event.kind() == "lease_expired";
      releases += event.kind() == "task_leased" && event.attempt() > 1;
    }
    std::vector<std::string> problems = CheckHistory(*events);
    for (const std::string& problem : problems) ADD_FAILURE() << problem;
    if (!problems.empty())
      ADD_FAILURE() << "history:\n" << EventHistory(*events);

    if (request.type() == v1::ACCESS) {
      // The bundle survived the crashes whole: it downloads with the
      // recorded hash (DownloadBundleBytes checks it).
      absl::StatusOr<std::string> zip =
          DownloadBundleBytes(*stub, request.id());
      EXPECT_TRUE(zip.ok()) << request.id() << ": " << zip.status();
    }
  }

  std::printf("crash_test: %d lease expiries, %d tasks leased again\n",
              lease_expiries, releases);

  // Retrying any key now still answers with the request it created.
  for (const Submission& submission : submissions) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::Request again;
    grpc::Status status =
        stub->CreateRequest(&context, submission.request, &again);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(again.id(), submission.id)
        << "key " << submission.request.idempotency_key()
        << " created a second request";
  }
  absl::StatusOr<std::vector<v1::Request>> final_list = ListAllRequests(*stub);
  ASSERT_TRUE(final_list.ok()) << final_list.status();
  EXPECT_EQ(final_list->size(), static_cast<size_t>(kRequests));

  // The audit log at rest: it verifies, extends the checkpoint saved after
  // the last restart, and holds exactly one leaf per event of every request
  // (a crash neither lost nor duplicated one). The workers are stopped
  // first so that nothing appends while the events are counted.
  for (auto& worker : workers) worker->Terminate();
  for (const std::string& problem : VerifyAuditAndSave(
           options.port, public_key, saved_checkpoint,
           dir.Join("checkpoint-final"), dir.Join("dsarctl-audit.log"))) {
    ADD_FAILURE() << "at the end: " << problem;
  }
  ++audit_checks;
  uint64_t total_events = 0;
  for (const Submission& submission : submissions) {
    absl::StatusOr<std::vector<v1::Event>> events =
        ListAllEvents(*stub, submission.id);
    ASSERT_TRUE(events.ok()) << events.status();
    total_events += events->size();
  }
  std::string note;
  ASSERT_EQ(RunAudit(options.port, {"checkpoint"},
                     dir.Join("dsarctl-audit.log"), &note),
            0)
      << note;
  std::optional<uint64_t> audit_size = CheckpointSize(note);
  ASSERT_TRUE(audit_size.has_value()) << note;
  EXPECT_EQ(*audit_size, total_events)
      << "audit entries vs events of all requests";
  std::printf(
      "crash_test: audit log verified %d times; %llu entries, one per "
      "event\n",
      audit_checks, static_cast<unsigned long long>(*audit_size));

  dsard->process->Terminate();
  std::printf("crash_test: seed %llu, %s in all\n",
              static_cast<unsigned long long>(seed),
              absl::FormatDuration(absl::Now() - started).c_str());
}

}  // namespace
}  // namespace dsar::testing
