// The audit log end to end: dsard writes it while requests run, `dsarctl
// audit` verifies it with only the checkpoint public key, and a log edited
// behind dsard's back (tests/tamper_audit.cc) or checked against the wrong key
// fails verification with a message that names what is wrong; an older
// copy of the data directory put back in place is caught as a rollback or a
// fork by dsarctl (which remembers the last verified checkpoint) and by dsard
// (which keeps the last checkpoint it handed out outside the data directory).

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr char kFailed[] = "audit verification FAILED";

struct Outcome {
  int code = -1;
  std::string output;  // stdout and stderr.
};

// The tree size of a signed checkpoint note: its second line; 0 when the
// note is malformed (reported as a failure).
uint64_t CheckpointSize(const std::string& note) {
  std::vector<std::string> lines = absl::StrSplit(note, '\n');
  uint64_t size = 0;
  if (lines.size() < 3 || !absl::SimpleAtoi(lines[1], &size)) {
    ADD_FAILURE() << "not a checkpoint: \"" << note << "\"";
    return 0;
  }
  return size;
}

class AuditLogTest : public ::testing::Test {
 protected:
  AuditLogTest() : dir_("dsar-audit") {}

  void SetUp() override {
    // dsarctl remembers verified checkpoints here, not in the user's home.
    ASSERT_EQ(
        ::setenv("DSARCTL_STATE_DIR", dir_.Join("dsarctl-state").c_str(), 1),
        0);
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.Join("stores"), 60);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
  }

  // Starts dsard on `data_dir`, with its port file and log in `work_dir`.
  void StartCoordinator(const std::string& data_dir,
                        const std::string& work_dir,
                        std::vector<std::string> extra_args = {}) {
    std::filesystem::create_directories(work_dir);
    DsardOptions options;
    options.data_dir = data_dir;
    options.inventory = inventory_;
    options.lease_seconds = 5;
    options.extra_args = std::move(extra_args);
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, work_dir);
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    stub_ = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
  }

  void StopCoordinator() {
    ASSERT_NE(dsard_.process, nullptr);
    EXPECT_EQ(dsard_.process->Terminate(), 0)
        << ReadFileOrEmpty(dsard_.process->log_path());
    dsard_.process.reset();
  }

  // Runs a program to completion with its output in a log of its own.
  Outcome RunProgram(const std::string& binary,
                     const std::vector<std::string>& args) {
    Outcome run;
    std::string log = dir_.Join(absl::StrCat("run-", ++runs_, ".log"));
    absl::StatusOr<int> code = RunToExit(binary, args, log, absl::Seconds(60));
    EXPECT_TRUE(code.ok()) << code.status();
    run.code = code.ok() ? *code : -1;
    run.output = ReadFileOrEmpty(log);
    return run;
  }

  // `dsarctl --addr=<the running dsard> audit <args>`.
  Outcome Audit(std::vector<std::string> args) {
    args.insert(args.begin(),
                {absl::StrCat("--addr=127.0.0.1:", dsard_.port), "audit"});
    return RunProgram(DsarctlPath(), args);
  }

  // The latest checkpoint's size, from `dsarctl audit checkpoint`.
  uint64_t LatestSize() {
    Outcome run = Audit({"checkpoint"});
    EXPECT_EQ(run.code, 0) << run.output;
    return CheckpointSize(run.output);
  }

  // Starts a worker for the running dsard (stopped by the caller).
  std::unique_ptr<Process> StartAuditWorker() {
    WorkerOptions worker_options;
    worker_options.coordinator_port = dsard_.port;
    worker_options.inventory = inventory_;
    worker_options.worker_id = absl::StrCat("audit-worker-", ++workers_);
    absl::StatusOr<std::unique_ptr<Process>> worker =
        StartWorker(worker_options, dir_.path());
    EXPECT_TRUE(worker.ok()) << worker.status();
    return worker.ok() ? *std::move(worker) : nullptr;
  }

  // Copies directory `from` to `to`.
  static void Copy(const std::string& from, const std::string& to) {
    std::error_code error;
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive,
                          error);
    ASSERT_FALSE(error) << to << ": " << error.message();
  }

  // Submits a request and waits until it has completed; returns its id.
  std::string RunRequest(v1::RequestType type, int person) {
    std::string email = absl::StrCat("person", person, "@example.com");
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::CreateRequestRequest request =
        RequestForEmail(type, email, absl::StrCat("audit-", type, "-", person));
    // Attested by the caller, so the request does not wait in VERIFYING.
    request.mutable_verified()->set_method("logged_in_session");
    request.mutable_verified()->set_evidence_ref(
        absl::StrCat("audit-test-", person));
    v1::Request created;
    grpc::Status status = stub_->CreateRequest(&context, request, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub_, created.id(), absl::Seconds(60));
    EXPECT_TRUE(done.ok()) << done.status();
    if (done.ok()) {
      EXPECT_EQ(done->status(), v1::COMPLETED) << done->ShortDebugString();
    }
    return created.id();
  }

  TempDir dir_;
  std::string inventory_;
  RunningDsard dsard_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  int runs_ = 0;
  int workers_ = 0;
};

TEST_F(AuditLogTest, VerifiesAndDetectsTamperingTruncationAndWrongKey) {
  const std::string data = dir_.Join("data");
  const std::string pubkey = dir_.Join("data/keys/checkpoint.key.pub");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(data, dir_.path()));
  ASSERT_TRUE(std::filesystem::exists(pubkey)) << pubkey;
  WorkerOptions worker_options;
  worker_options.coordinator_port = dsard_.port;
  worker_options.inventory = inventory_;
  worker_options.worker_id = "audit-worker";
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(worker_options, dir_.path());
  ASSERT_TRUE(worker.ok()) << worker.status();

  // A few requests, then a checkpoint an auditor keeps.
  std::string access = RunRequest(v1::ACCESS, 1);
  RunRequest(v1::ERASURE, 2);
  RunRequest(v1::ACCESS, 3);
  const std::string saved = dir_.Join("saved-checkpoint");
  {
    // Only a verified checkpoint is saved.
    Outcome unverified = Audit({"checkpoint", absl::StrCat("--save=", saved)});
    EXPECT_EQ(unverified.code, 2) << unverified.output;
    EXPECT_THAT(unverified.output, HasSubstr("--pubkey"));
    EXPECT_FALSE(std::filesystem::exists(saved));
  }
  Outcome checkpoint = Audit({"checkpoint", absl::StrCat("--save=", saved),
                              absl::StrCat("--pubkey=", pubkey)});
  ASSERT_EQ(checkpoint.code, 0) << checkpoint.output;
  const uint64_t saved_size = CheckpointSize(ReadFileOrEmpty(saved));
  ASSERT_GT(saved_size, 0u) << checkpoint.output;

  // More requests; the log still extends the saved checkpoint.
  std::string erasure = RunRequest(v1::ERASURE, 4);
  RunRequest(v1::ACCESS, 5);
  const uint64_t size = LatestSize();
  ASSERT_GT(size, saved_size);
  {
    Outcome verify = Audit({"verify", absl::StrCat("--pubkey=", pubkey),
                            absl::StrCat("--since=", saved)});
    EXPECT_EQ(verify.code, 0) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(absl::StrCat(
                                   "audit log verified: ", size, " entries")));
    EXPECT_THAT(verify.output,
                HasSubstr(absl::StrCat("consistent with the saved checkpoint "
                                       "of size ",
                                       saved_size)));
  }
  for (const std::string& id : {access, erasure}) {
    SCOPED_TRACE(id);
    absl::StatusOr<std::vector<v1::Event>> events = ListAllEvents(*stub_, id);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_FALSE(events->empty());
    Outcome run = Audit({"events", id, absl::StrCat("--pubkey=", pubkey)});
    EXPECT_EQ(run.code, 0) << run.output;
    EXPECT_THAT(run.output,
                HasSubstr(absl::StrCat(events->size(), " entries of ", id,
                                       " checked against the checkpoint")));
    EXPECT_THAT(run.output, HasSubstr("proven"));
  }
  {
    Outcome prove = Audit({"prove", "0", absl::StrCat("--pubkey=", pubkey)});
    EXPECT_EQ(prove.code, 0) << prove.output;
    EXPECT_THAT(prove.output, HasSubstr("entry 0 ("));
    EXPECT_THAT(prove.output, HasSubstr("is included in the checkpoint"));
  }

  // Another coordinator's key does not verify this log's checkpoints.
  {
    // A second dsard on a fresh data directory creates a key of its own.
    std::filesystem::create_directories(dir_.Join("other"));
    DsardOptions options;
    options.data_dir = dir_.Join("other/data");
    options.inventory = inventory_;
    absl::StatusOr<RunningDsard> other =
        StartDsard(options, dir_.Join("other"));
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(other->process->Terminate(), 0);
    const std::string wrong_key =
        dir_.Join("other/data/keys/checkpoint.key.pub");
    ASSERT_TRUE(std::filesystem::exists(wrong_key)) << wrong_key;
    ASSERT_NE(ReadFileOrEmpty(wrong_key), ReadFileOrEmpty(pubkey));
    Outcome verify = Audit({"verify", absl::StrCat("--pubkey=", wrong_key)});
    EXPECT_EQ(verify.code, 1) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(kFailed));
    EXPECT_THAT(verify.output, HasSubstr("checkpoint"));
    EXPECT_THAT(verify.output, HasSubstr("signature"));
    Outcome prove = Audit({"prove", "0", absl::StrCat("--pubkey=", wrong_key)});
    EXPECT_EQ(prove.code, 1) << prove.output;
    EXPECT_THAT(prove.output, HasSubstr("signature"));
    const std::string unverifiable = dir_.Join("unverifiable-checkpoint");
    Outcome save = Audit({"checkpoint", absl::StrCat("--save=", unverifiable),
                          absl::StrCat("--pubkey=", wrong_key)});
    EXPECT_EQ(save.code, 1) << save.output;
    EXPECT_THAT(save.output, HasSubstr("signature"));
    EXPECT_FALSE(std::filesystem::exists(unverifiable));
  }
  EXPECT_EQ(LatestSize(), size) << "nothing ran, yet the log grew";

  // Stop everything and take two copies of the data directory.
  EXPECT_EQ((*worker)->Terminate(), 0)
      << ReadFileOrEmpty((*worker)->log_path());
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());
  const std::string copy_a = dir_.Join("copy-a");
  const std::string copy_b = dir_.Join("copy-b");
  for (const std::string& copy : {copy_a, copy_b}) {
    std::error_code error;
    std::filesystem::copy(data, copy, std::filesystem::copy_options::recursive,
                          error);
    ASSERT_FALSE(error) << copy << ": " << error.message();
  }

  // A: one byte of a leaf in the middle of the log altered.
  const uint64_t altered = size / 2;
  {
    Outcome tamper =
        RunProgram(TamperAuditPath(), {absl::StrCat("--data_dir=", copy_a),
                                       "flip-leaf", absl::StrCat(altered)});
    ASSERT_EQ(tamper.code, 0) << tamper.output;
    EXPECT_THAT(tamper.output,
                HasSubstr(absl::StrCat("of audit leaf ", altered, ":")));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(copy_a, dir_.Join("run-a")));
    Outcome verify = Audit({"verify", absl::StrCat("--pubkey=", pubkey)});
    EXPECT_EQ(verify.code, 1) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(kFailed));
    // The altered entry is named (found through its request's chain), or,
    // when it is a request's last event, the recomputed root differs.
    EXPECT_THAT(verify.output,
                AnyOf(HasSubstr(absl::StrCat("entry ", altered, " (")),
                      HasSubstr("root")));
    std::printf("copy A (leaf %llu altered): %s",
                static_cast<unsigned long long>(altered),
                verify.output.c_str());
    Outcome since = Audit({"verify", absl::StrCat("--pubkey=", pubkey),
                           absl::StrCat("--since=", saved)});
    EXPECT_EQ(since.code, 1) << since.output;
    EXPECT_THAT(since.output, HasSubstr(kFailed));
    // The altered entry is no longer included in the signed tree.
    Outcome prove = Audit(
        {"prove", absl::StrCat(altered), absl::StrCat("--pubkey=", pubkey)});
    EXPECT_EQ(prove.code, 1) << prove.output;
    EXPECT_THAT(prove.output, HasSubstr(absl::StrCat("entry ", altered, " ")));
    // Other entries still prove.
    Outcome intact = Audit({"prove", absl::StrCat(altered == 0 ? 1 : 0),
                            absl::StrCat("--pubkey=", pubkey)});
    EXPECT_EQ(intact.code, 0) << intact.output;
    ASSERT_NO_FATAL_FAILURE(StopCoordinator());
  }

  // B: the last 5 leaves deleted; hashes and checkpoint left as they were.
  // dsard rebuilds the tree's right edge from the stored hashes of complete
  // blocks of 16 leaves and the leaves after them. When a deleted leaf is
  // among those, dsard refuses to start and names the first missing leaf
  // (it would otherwise sign new checkpoints over a damaged log); when all
  // lie in complete blocks, it starts and verification finds them missing.
  {
    Outcome tamper =
        RunProgram(TamperAuditPath(), {absl::StrCat("--data_dir=", copy_b),
                                       "truncate", absl::StrCat(size - 5)});
    ASSERT_EQ(tamper.code, 0) << tamper.output;
    EXPECT_THAT(tamper.output, HasSubstr("deleted 5 audit leaves"));
    std::filesystem::create_directories(dir_.Join("run-b"));
    DsardOptions options;
    options.data_dir = copy_b;
    options.inventory = inventory_;
    absl::StatusOr<RunningDsard> started =
        StartDsard(options, dir_.Join("run-b"));
    if (!started.ok()) {
      const std::string log = ReadFileOrEmpty(dir_.Join("run-b/dsard.log"));
      EXPECT_THAT(log, HasSubstr("cannot be reopened")) << log;
      EXPECT_THAT(log, HasSubstr("is missing")) << log;
      EXPECT_NE(size % 16, 0u) << log;
    } else {
      EXPECT_EQ(size % 16, 0u) << "dsard started with leaves of its right "
                                  "edge missing";
      dsard_ = std::move(*started);
      Outcome verify = Audit({"verify", absl::StrCat("--pubkey=", pubkey)});
      EXPECT_EQ(verify.code, 1) << verify.output;
      EXPECT_THAT(verify.output, HasSubstr(kFailed));
      EXPECT_THAT(verify.output,
                  HasSubstr(absl::StrCat("entry ", size - 5, " is missing")));
      ASSERT_NO_FATAL_FAILURE(StopCoordinator());
    }
  }

  // Control: the untouched original restarts (the tree's right edge is
  // rebuilt from storage) and still verifies, also against the saved
  // checkpoint, so the failures above come from the tampering alone.
  {
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(data, dir_.path()));
    Outcome verify = Audit({"verify", absl::StrCat("--pubkey=", pubkey),
                            absl::StrCat("--since=", saved)});
    EXPECT_EQ(verify.code, 0) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(absl::StrCat(
                                   "audit log verified: ", size, " entries")));
    EXPECT_THAT(verify.output,
                HasSubstr("consistent with the saved checkpoint"));
    ASSERT_NO_FATAL_FAILURE(StopCoordinator());
  }
}

// An older copy of the data directory put back in place: dsarctl, which
// remembered the newer checkpoint, reports a rollback, and once the old copy
// has grown again, a fork — with no --since — and saves neither checkpoint.
TEST_F(AuditLogTest, DsarctlCatchesARestoredOlderDataDirectory) {
  const std::string data = dir_.Join("data");
  const std::string old = dir_.Join("old");
  const std::string pubkey = dir_.Join("data/keys/checkpoint.key.pub");
  const std::string verify_key = absl::StrCat("--pubkey=", pubkey);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(data, dir_.Join("run-1")));
  std::unique_ptr<Process> worker = StartAuditWorker();
  ASSERT_NE(worker, nullptr);
  RunRequest(v1::ACCESS, 1);
  RunRequest(v1::ERASURE, 2);
  {
    Outcome verify = Audit({"verify", verify_key});
    EXPECT_EQ(verify.code, 0) << verify.output;
  }
  // The checkpoint's origin is unique to the deployment's key, and the key
  // is published as a C2SP verifier key under that name.
  std::string note = Audit({"checkpoint"}).output;
  std::string origin = note.substr(0, note.find('\n'));
  EXPECT_THAT(origin, ::testing::StartsWith("dsar.local/audit/"));
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("data/keys/checkpoint.vkey")),
              ::testing::StartsWith(absl::StrCat(origin, "+")));
  EXPECT_EQ(worker->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());
  ASSERT_NO_FATAL_FAILURE(Copy(data, old));

  // The real directory goes on; dsarctl remembers its newer checkpoint.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(data, dir_.Join("run-2")));
  worker = StartAuditWorker();
  ASSERT_NE(worker, nullptr);
  std::string later = RunRequest(v1::ACCESS, 3);
  RunRequest(v1::ERASURE, 4);
  const uint64_t size = LatestSize();
  {
    Outcome verify = Audit({"verify", verify_key});
    EXPECT_EQ(verify.code, 0) << verify.output;
  }
  EXPECT_EQ(worker->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());

  // The old copy restored: smaller than what was verified.
  const std::string saved = dir_.Join("saved");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(old, dir_.Join("run-3")));
  {
    Outcome verify = Audit({"verify", verify_key});
    EXPECT_EQ(verify.code, 1) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(kFailed));
    EXPECT_THAT(verify.output, HasSubstr("rollback:"));
    EXPECT_THAT(verify.output,
                HasSubstr(absl::StrCat("checkpoint of ", size, " entries")));
    std::printf("rolled back: %s", verify.output.c_str());
    Outcome save =
        Audit({"checkpoint", verify_key, absl::StrCat("--save=", saved)});
    EXPECT_EQ(save.code, 1) << save.output;
    EXPECT_THAT(save.output, HasSubstr("rollback:"));
    EXPECT_FALSE(std::filesystem::exists(saved));
    Outcome events = Audit({"prove", "0", verify_key});
    EXPECT_EQ(events.code, 1) << events.output;
    EXPECT_THAT(events.output, HasSubstr("rollback:"));
  }
  // The old copy grows past the remembered size with other events: a fork,
  // though its own history verifies.
  worker = StartAuditWorker();
  ASSERT_NE(worker, nullptr);
  std::string forked;
  for (int person = 5; person < 10 && LatestSize() <= size; ++person)
    forked = RunRequest(v1::ACCESS, person);
  ASSERT_GT(LatestSize(), size);
  {
    Outcome verify = Audit({"verify", verify_key});
    EXPECT_EQ(verify.code, 1) << verify.output;
    EXPECT_THAT(verify.output, HasSubstr(kFailed));
    EXPECT_THAT(verify.output, HasSubstr("fork:"));
    std::printf("forked: %s", verify.output.c_str());
    Outcome save =
        Audit({"checkpoint", verify_key, absl::StrCat("--save=", saved)});
    EXPECT_EQ(save.code, 1) << save.output;
    EXPECT_THAT(save.output, HasSubstr("fork:"));
    EXPECT_FALSE(std::filesystem::exists(saved));
    // `events --pubkey` (the everyday command) refuses it too.
    Outcome events = RunProgram(DsarctlPath(),
                                {absl::StrCat("--addr=127.0.0.1:", dsard_.port),
                                 "events", forked, verify_key});
    EXPECT_EQ(events.code, 1) << events.output;
    EXPECT_THAT(events.output, HasSubstr("fork:"));
  }
  EXPECT_EQ(worker->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());

  // Control: the real directory still verifies against what was remembered.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(data, dir_.Join("run-4")));
  {
    Outcome verify = Audit({"verify", verify_key});
    EXPECT_EQ(verify.code, 0) << verify.output;
    Outcome save =
        Audit({"checkpoint", verify_key, absl::StrCat("--save=", saved)});
    EXPECT_EQ(save.code, 0) << save.output;
    EXPECT_EQ(CheckpointSize(ReadFileOrEmpty(saved)), size);
    Outcome events = RunProgram(DsarctlPath(),
                                {absl::StrCat("--addr=127.0.0.1:", dsard_.port),
                                 "events", later, verify_key});
    EXPECT_EQ(events.code, 0) << events.output;
  }
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());
}

// dsard keeps the last checkpoint it handed out in a witness file outside
// the data directory and refuses to start on an older copy of the data.
TEST_F(AuditLogTest, DsardRefusesARestoredOlderDataDirectory) {
  Outcome help = RunProgram(DsardPath(), {"--help"});
  if (help.output.find("checkpoint_witness") == std::string::npos) {
    GTEST_SKIP() << "dsard has no --checkpoint_witness yet (the coordinator "
                    "does not pass a witness to the audit log)";
  }
  const std::string data = dir_.Join("data");
  const std::string old = dir_.Join("old");
  const std::string witness =
      absl::StrCat("--checkpoint_witness=", dir_.Join("witness/checkpoint"));
  ASSERT_NO_FATAL_FAILURE(
      StartCoordinator(data, dir_.Join("run-1"), {witness}));
  std::unique_ptr<Process> worker = StartAuditWorker();
  ASSERT_NE(worker, nullptr);
  RunRequest(v1::ACCESS, 1);
  EXPECT_EQ(worker->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());
  ASSERT_NO_FATAL_FAILURE(Copy(data, old));

  ASSERT_NO_FATAL_FAILURE(
      StartCoordinator(data, dir_.Join("run-2"), {witness}));
  worker = StartAuditWorker();
  ASSERT_NE(worker, nullptr);
  RunRequest(v1::ERASURE, 2);
  EXPECT_EQ(worker->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());

  DsardOptions options;
  options.data_dir = old;
  options.inventory = inventory_;
  options.extra_args = {witness};
  std::filesystem::create_directories(dir_.Join("run-3"));
  absl::StatusOr<RunningDsard> refused =
      StartDsard(options, dir_.Join("run-3"));
  EXPECT_FALSE(refused.ok()) << "dsard started on a rolled-back directory";
  std::string log = ReadFileOrEmpty(dir_.Join("run-3/dsard.log"));
  EXPECT_THAT(log, HasSubstr("rollback:")) << log;
  EXPECT_THAT(log, HasSubstr("checkpoint witness")) << log;

  // The newer directory still starts with the same witness.
  ASSERT_NO_FATAL_FAILURE(
      StartCoordinator(data, dir_.Join("run-4"), {witness}));
  ASSERT_NO_FATAL_FAILURE(StopCoordinator());
}

// Bad usage of the tampering tool is refused without touching anything.
TEST_F(AuditLogTest, TamperToolRejectsBadUsage) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {},
           {"flip-leaf", "1"},
           {absl::StrCat("--data_dir=", dir_.Join("data")), "flip-leaf"},
           {absl::StrCat("--data_dir=", dir_.Join("data")), "rewrite", "1"},
           {absl::StrCat("--data_dir=", dir_.Join("data")), "truncate", "-1"},
       }) {
    Outcome run = RunProgram(TamperAuditPath(), args);
    EXPECT_EQ(run.code, 2) << run.output;
    EXPECT_THAT(run.output, HasSubstr("usage:"));
  }
}

}  // namespace
}  // namespace dsar::testing
