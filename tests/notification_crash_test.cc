// The acceptance test for the notification outbox: dsard is SIGKILLed between
// a notification's enqueue and its delivery, and after a restart on the same
// data directory every notification reaches the webhook receiver exactly once
// once the receiver deduplicates by X-DSAR-Delivery (the same id is resent;
// duplicates on the wire are allowed, a notification under a second id, a lost
// one or an unsigned one is not).
//
// Phase 1: the receiver answers 503 to everything, several requests run to
// completion, and dsard is killed once the receiver has seen an attempt of
// every notification (so each is in the outbox and none is delivered). The
// receiver then accepts, and dsard restarts.
// Phase 2: the receiver accepts, and dsard is killed right after a request is
// acknowledged (best effort: its "received" may already be out), then again
// while the receiver holds a "completed" delivery unanswered; the receiver
// processes that one after the kill, so dsard must resend it (same id) after
// the restart and the receiver sees it twice on the wire, once after dedup.

#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

constexpr char kSecret[] = "notification-crash-test-secret-0123456789";
constexpr int kPhaseOneRequests = 4;
// Deliveries whose timestamp is further than this from the receiver's clock
// are rejected as replays.
constexpr int64_t kFreshnessSeconds = 300;
const char* const kKinds[] = {"received", "started", "completed"};

// (request id, kind): what a notification is about.
using Subject = std::pair<std::string, std::string>;

std::string Hmac(const std::string& key, const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest,
       &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

// Polls `done` every 10 ms until it holds or `timeout` passes.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return done();
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// A webhook receiver on 127.0.0.1 that checks signatures and timestamps,
// records every delivery, and either fails everything with 503 or accepts.
class WebhookReceiver {
 public:
  struct Accepted {
    Subject subject;
    std::string body;
    int count = 0;                  // Raw deliveries answered 2xx.
    std::vector<absl::Time> times;  // When each of them was answered.
  };

  explicit WebhookReceiver(std::string secret) : secret_(std::move(secret)) {
    server_.Post("/hook", [this](const httplib::Request& request,
                                 httplib::Response& response) {
      response.status = Handle(request);
    });
  }
  ~WebhookReceiver() { Stop(); }

  // Binds a free port; returns false when that fails.
  bool Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return true;
  }
  void Stop() {
    Release();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  void set_accept(bool accept) {
    std::lock_guard<std::mutex> lock(mu_);
    accept_ = accept;
  }

  // From now on the first attempt of each "completed" not yet accepted is
  // held unanswered until Release(): the sender is stuck between enqueue and
  // delivery. The held delivery is then handled as any other (accepted, in
  // accept mode, even if its sender is gone by then).
  void HoldNewCompletions() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    released_.notify_all();
  }
  // The id of the delivery held last ("" if none), and how many handlers are
  // still waiting for Release().
  std::string held_id() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_id_;
  }
  int holding() const {
    std::lock_guard<std::mutex> lock(mu_);
    return holding_;
  }

  std::map<std::string, Accepted> accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }
  int raw_accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_accepted_;
  }
  int raw_refused() const {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_refused_;
  }
  std::vector<std::string> problems() const {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }

  // The subjects accepted so far (after deduplication by id).
  std::set<Subject> AcceptedSubjects() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<Subject> subjects;
    for (const auto& [id, accepted] : accepted_)
      subjects.insert(accepted.subject);
    return subjects;
  }
  // The subjects of deliveries with a valid signature, answered or not.
  std::set<Subject> AttemptedSubjects() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<Subject> subjects;
    for (const auto& [id, subject] : attempted_) subjects.insert(subject);
    return subjects;
  }

 private:
  int Handle(const httplib::Request& request) {
    std::string id = request.get_header_value("X-DSAR-Delivery");
    std::string timestamp = request.get_header_value("X-DSAR-Timestamp");
    std::string signature = request.get_header_value("X-DSAR-Signature");
    std::string expected = absl::StrCat(
        "sha256=", Hmac(secret_, absl::StrCat(timestamp, ".", request.body)));
    int64_t sent = 0;
    int64_t now = absl::ToUnixSeconds(absl::Now());
    std::unique_lock<std::mutex> lock(mu_);
    if (id.empty()) {
      problems_.push_back(absl::StrCat("no X-DSAR-Delivery: ", request.body));
      return 400;
    }
    if (signature.size() != expected.size() ||
        CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) !=
            0) {
      problems_.push_back(absl::StrCat(id, ": bad signature \"", signature,
                                       "\" for timestamp \"", timestamp, "\""));
      return 401;
    }
    if (!absl::SimpleAtoi(timestamp, &sent) ||
        std::llabs(now - sent) > kFreshnessSeconds) {
      problems_.push_back(
          absl::StrCat(id, ": stale timestamp ", timestamp, " at ", now));
      return 401;
    }
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() ||
        body.value("id", std::string()) != id) {
      problems_.push_back(
          absl::StrCat(id, ": body does not carry this id: ", request.body));
      return 400;
    }
    Subject subject{body.value("request_id", std::string()),
                    body.value("kind", std::string())};
    auto [seen, inserted] = attempted_.emplace(id, subject);
    if (!inserted && seen->second != subject) {
      problems_.push_back(
          absl::StrCat(id, ": redelivered as another subject: ", request.body));
    }
    if (hold_ && subject.second == "completed" && accepted_.count(id) == 0) {
      held_id_ = id;
      ++holding_;
      released_.wait(lock, [this] { return !hold_; });
      --holding_;
    }
    if (!accept_) {
      ++raw_refused_;
      return 503;
    }
    ++raw_accepted_;
    Accepted& accepted = accepted_[id];
    if (accepted.count > 0 && accepted.body != request.body) {
      problems_.push_back(absl::StrCat(id, ": redelivered with another body: ",
                                       accepted.body, " then ", request.body));
    }
    accepted.subject = subject;
    accepted.body = request.body;
    ++accepted.count;
    accepted.times.push_back(absl::Now());
    return 204;
  }

  const std::string secret_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;

  mutable std::mutex mu_;
  bool accept_ = false;                       // GUARDED_BY(mu_)
  std::map<std::string, Subject> attempted_;  // GUARDED_BY(mu_)
  std::map<std::string, Accepted> accepted_;  // GUARDED_BY(mu_)
  int raw_accepted_ = 0;                      // GUARDED_BY(mu_)
  int raw_refused_ = 0;                       // GUARDED_BY(mu_)
  std::vector<std::string> problems_;         // GUARDED_BY(mu_)
  bool hold_ = false;                         // GUARDED_BY(mu_)
  std::string held_id_;                       // GUARDED_BY(mu_)
  int holding_ = 0;                           // GUARDED_BY(mu_)
  std::condition_variable released_;
};

std::set<Subject> ExpectedFor(const std::vector<std::string>& request_ids) {
  std::set<Subject> expected;
  for (const std::string& id : request_ids) {
    for (const char* kind : kKinds) expected.insert({id, kind});
  }
  return expected;
}

bool Includes(const std::set<Subject>& all, const std::set<Subject>& part) {
  return std::includes(all.begin(), all.end(), part.begin(), part.end());
}

std::string Describe(const std::set<Subject>& subjects) {
  std::string text;
  for (const auto& [request, kind] : subjects) {
    absl::StrAppend(&text, "  ", request, " ", kind, "\n");
  }
  return text;
}

absl::StatusOr<std::string> Create(int port, const std::string& email,
                                   const std::string& key) {
  auto stub = v1::DsarService::NewStub(LoopbackChannel(port));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::Request created;
  grpc::Status status = stub->CreateRequest(
      &context, RequestForEmail(v1::ACCESS, email, key), &created);
  if (!status.ok()) return ToAbsl(status);
  return created.id();
}

class NotificationCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(receiver_.Start());
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.path(), 20);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
    std::string secret_file = dir_.Join("webhook.secret");
    std::ofstream(secret_file) << kSecret;

    options_.data_dir = dir_.Join("data");
    options_.inventory = inventory_;
    // Short, so a lease held across a kill does not stall the test.
    options_.lease_seconds = 2;
    options_.extra_args = {absl::StrCat("--webhook_url=http://127.0.0.1:",
                                        receiver_.port(), "/hook"),
                           absl::StrCat("--webhook_secret_file=", secret_file)};
  }

  void TearDown() override {
    if (worker_ != nullptr) worker_->Terminate();
    if (dsard_.process != nullptr) dsard_.process->Terminate();
    receiver_.Stop();
  }

  // Starts dsard (on the port of the previous run, if any) and, once, the
  // worker, which reconnects by itself after every restart.
  void StartCluster() {
    options_.port = dsard_.port;
    absl::StatusOr<RunningDsard> dsard = StartDsard(options_, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    if (worker_ != nullptr) return;
    WorkerOptions worker;
    worker.coordinator_port = dsard_.port;
    worker.inventory = inventory_;
    worker.worker_id = "worker-1";
    worker.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> process =
        StartWorker(worker, dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    worker_ = std::move(*process);
  }

  void KillDsard() {
    EXPECT_EQ(dsard_.process->Kill(), 128 + SIGKILL);
    std::printf("killed dsard at +%s\n",
                absl::FormatDuration(absl::Now() - start_).c_str());
  }

  void WaitCompleted(const std::string& id) {
    auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub, id, absl::Seconds(20));
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(done->status(), v1::COMPLETED) << done->ShortDebugString();
  }

  TempDir dir_{"dsar-notification-crash"};
  WebhookReceiver receiver_{kSecret};
  std::string inventory_;
  DsardOptions options_;
  RunningDsard dsard_;
  std::unique_ptr<Process> worker_;
  absl::Time start_ = absl::Now();
};

TEST_F(NotificationCrashTest, OutboxSurvivesKillAndIsDeliveredOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());

  // Phase 1: enqueued, attempted, refused, then the coordinator dies.
  receiver_.set_accept(false);
  std::vector<std::string> phase_one;
  for (int i = 0; i < kPhaseOneRequests; ++i) {
    absl::StatusOr<std::string> id =
        Create(dsard_.port, absl::StrCat("person", i, "@example.com"),
               absl::StrCat("notification-crash-", i));
    ASSERT_TRUE(id.ok()) << id.status();
    phase_one.push_back(*id);
  }
  for (const std::string& id : phase_one) {
    ASSERT_NO_FATAL_FAILURE(WaitCompleted(id));
  }
  std::set<Subject> expected = ExpectedFor(phase_one);
  ASSERT_TRUE(PollUntil(
      [&] { return Includes(receiver_.AttemptedSubjects(), expected); },
      absl::Seconds(10)))
      << "not attempted in time; attempted:\n"
      << Describe(receiver_.AttemptedSubjects()) << "expected:\n"
      << Describe(expected) << "receiver problems: "
      << ::testing::PrintToString(receiver_.problems());
  KillDsard();
  ASSERT_TRUE(receiver_.accepted().empty());
  int refused_before_kill = receiver_.raw_refused();

  receiver_.set_accept(true);
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  EXPECT_TRUE(PollUntil(
      [&] { return Includes(receiver_.AcceptedSubjects(), expected); },
      absl::Seconds(10)))
      << "not redelivered after the restart; accepted:\n"
      << Describe(receiver_.AcceptedSubjects()) << "expected:\n"
      << Describe(expected);

  // Phase 2: the receiver accepts. Round 0 kills dsard right after a
  // request is acknowledged (its "received" may or may not be out). Round 1
  // kills it while the receiver holds the request's "completed" unanswered,
  // then lets the receiver process that delivery: the receiver has it, dsard
  // never learnt so, and must send it again under the same id.
  std::string held_id;
  for (int round = 0; round < 2; ++round) {
    if (round == 1) receiver_.HoldNewCompletions();
    absl::StatusOr<std::string> id =
        Create(dsard_.port, absl::StrCat("person", 10 + round, "@example.com"),
               absl::StrCat("notification-crash-phase-two-", round));
    ASSERT_TRUE(id.ok()) << id.status();
    if (round == 1) {
      ASSERT_NO_FATAL_FAILURE(WaitCompleted(*id));
      ASSERT_TRUE(PollUntil(
          [&] { return receiver_.held_id().rfind(*id + "/", 0) == 0; },
          absl::Seconds(10)))
          << "no \"completed\" of " << *id << " held; held "
          << receiver_.held_id();
      held_id = receiver_.held_id();
    }
    KillDsard();
    std::set<Subject> out = receiver_.AcceptedSubjects();
    std::printf("phase 2 round %d: killed with received %s, completed %s\n",
                round, out.count({*id, "received"}) ? "delivered" : "pending",
                out.count({*id, "completed"}) ? "delivered" : "pending");
    if (round == 1) {
      receiver_.Release();
      ASSERT_TRUE(PollUntil([&] { return receiver_.holding() == 0; },
                            absl::Seconds(5)));
      ASSERT_EQ(receiver_.accepted()[held_id].count, 1) << held_id;
    }
    ASSERT_NO_FATAL_FAILURE(StartCluster());
    ASSERT_NO_FATAL_FAILURE(WaitCompleted(*id));
    std::set<Subject> mine = ExpectedFor({*id});
    EXPECT_TRUE(
        PollUntil([&] { return Includes(receiver_.AcceptedSubjects(), mine); },
                  absl::Seconds(10)))
        << "round " << round << " not delivered; accepted:\n"
        << Describe(receiver_.AcceptedSubjects());
    expected.insert(mine.begin(), mine.end());
  }

  // Let the cluster go down cleanly, so nothing is in flight while reading.
  worker_->Terminate();
  dsard_.process->Terminate();
  std::map<std::string, WebhookReceiver::Accepted> accepted =
      receiver_.accepted();
  std::string report;
  std::map<Subject, std::vector<std::string>> ids_by_subject;
  for (const auto& [id, delivery] : accepted) {
    ids_by_subject[delivery.subject].push_back(id);
    absl::StrAppend(&report, "  ", id, " x", delivery.count, " at");
    for (absl::Time time : delivery.times) {
      absl::StrAppend(&report, " +", absl::FormatDuration(time - start_));
    }
    absl::StrAppend(&report, "\n");
  }
  std::printf(
      "%d refused before the kill; %d raw 2xx deliveries of %zu ids:\n%s",
      refused_before_kill, receiver_.raw_accepted(), accepted.size(),
      report.c_str());
  SCOPED_TRACE(report);

  EXPECT_TRUE(receiver_.problems().empty())
      << ::testing::PrintToString(receiver_.problems());
  // Every notification arrived, none twice under different ids, nothing else.
  std::set<Subject> subjects;
  for (const auto& [subject, ids] : ids_by_subject) {
    subjects.insert(subject);
    EXPECT_EQ(ids.size(), 1u)
        << subject.first << " " << subject.second
        << " delivered under several ids: " << ::testing::PrintToString(ids);
  }
  EXPECT_EQ(subjects, expected) << "accepted:\n"
                                << Describe(subjects) << "expected:\n"
                                << Describe(expected);
  for (const auto& [id, delivery] : accepted) {
    // Resending is allowed (a kill between a 2xx and the outbox removal
    // commits resends); the one held across the kill must have been resent:
    // processed once then, and once after the restart.
    if (id == held_id) {
      EXPECT_EQ(delivery.count, 2) << id;
    } else {
      EXPECT_GE(delivery.count, 1) << id;
    }
    EXPECT_EQ(id.rfind(delivery.subject.first + "/", 0), 0u)
        << id << " does not name its request";
  }
}

}  // namespace
}  // namespace dsar::testing
