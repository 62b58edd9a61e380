// AuditLog on a real state database: the origin it picks, and the checkpoint
// witness that makes a restored older database refuse to open.

#include "storage/audit/audit_log.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gtest/gtest.h"
#include "storage/audit/checkpoint.h"
#include "storage/state_store.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;

class AuditLogWitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "audit_log_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(MakeDirectories(Path("keys")).ok());
  }
  void TearDown() override {
    log_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const {
    return (fs::path(dir_) / name).string();
  }

  // Opens the database `db` and its log; the key is shared unless `keys`.
  absl::Status Open(const std::string& db, const std::string& witness,
                    const std::string& origin = "",
                    const std::string& keys = "keys") {
    log_.reset();
    store_.reset();
    if (ring_ == nullptr) {
      absl::StatusOr<std::unique_ptr<FileKeyRing>> ring =
          FileKeyRing::Open(Path("kek"));
      if (!ring.ok()) return ring.status();
      ring_ = *std::move(ring);
    }
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        StateStore::Open(Path(db), ring_.get());
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    AuditLog::Options options;
    options.origin = origin;
    options.hmac_key = "0123456789abcdef";
    options.witness_path = witness;
    absl::Status made = MakeDirectories(Path(keys));
    if (!made.ok()) return made;
    absl::StatusOr<std::unique_ptr<audit::CheckpointSigner>> signer =
        audit::CheckpointSigner::LoadOrCreate(Path(keys + "/checkpoint.key"),
                                              "");
    if (!signer.ok()) return signer.status();
    options.signer = *std::move(signer);
    absl::StatusOr<std::unique_ptr<AuditLog>> log =
        AuditLog::Open(store_.get(), std::move(options));
    if (!log.ok()) return log.status();
    log_ = *std::move(log);
    return absl::OkStatus();
  }

  void Close() {
    log_.reset();
    store_.reset();
  }

  // Appends `count` events (details tagged with `tag`) in one commit group.
  void Append(int count, const std::string& tag) {
    StateBatch batch = store_->NewBatch();
    for (int i = 0; i < count; ++i) {
      v1::Event event;
      event.set_request_id("dsr_test");
      event.set_detail(absl::StrCat(tag, " ", i));
      log_->Append(batch, &event);
    }
    ASSERT_TRUE(log_->SealGroup(batch).ok());
    ASSERT_TRUE(store_->Commit(batch).ok());
  }

  uint64_t Size() { return log_->GetCheckpoint()->size(); }

  std::string dir_;
  std::unique_ptr<FileKeyRing> ring_;  // Outlives store_.
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogWitnessTest, OriginIsUniquePerKeyAndNeverChanges) {
  ASSERT_TRUE(Open("a", "").ok());
  const std::string origin = log_->origin();
  EXPECT_EQ(origin, AuditLog::DerivedOrigin(log_->signer()));
  EXPECT_TRUE(absl::StartsWith(origin, "dsar.local/audit/")) << origin;
  EXPECT_EQ(*ReadFile(Path("keys/checkpoint.vkey")),
            log_->signer().verifier_key() + "\n");
  EXPECT_TRUE(absl::StartsWith(log_->signer().verifier_key(), origin + "+"));
  Append(3, "a");
  Close();

  // Another key, another origin.
  ASSERT_TRUE(Open("b", "", "", "other-keys").ok());
  EXPECT_NE(log_->origin(), origin);

  // A stored log keeps its origin: by default, and against an explicit one.
  ASSERT_TRUE(Open("a", "").ok());
  EXPECT_EQ(log_->origin(), origin);
  absl::Status renamed = Open("a", "", "dsar.example/audit");
  EXPECT_EQ(renamed.code(), absl::StatusCode::kFailedPrecondition) << renamed;

  // An existing deployment named by the flag keeps its name.
  ASSERT_TRUE(Open("c", "", "dsar.example/audit").ok());
  Append(1, "c");
  ASSERT_TRUE(Open("c", "").ok());
  EXPECT_EQ(log_->origin(), "dsar.example/audit");
}

TEST_F(AuditLogWitnessTest, RefusesARestoredOlderDatabase) {
  const std::string witness = Path("outside/witness");
  ASSERT_TRUE(Open("db", witness).ok());
  Append(5, "first");
  ASSERT_EQ(Size(), 5u);  // Served, so witnessed.
  Close();
  std::error_code error;
  fs::copy(Path("db"), Path("old"), fs::copy_options::recursive, error);
  ASSERT_FALSE(error) << error.message();

  ASSERT_TRUE(Open("db", witness).ok());
  Append(5, "second");
  Close();  // Witnesses the final checkpoint, 10, though it was never served.

  // The old copy is shorter than the witness.
  absl::Status rollback = Open("old", witness);
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(rollback.message(), "rollback:")) << rollback;
  EXPECT_TRUE(absl::StrContains(rollback.message(), witness)) << rollback;

  // The old copy, grown past the witness with other events: a fork.
  ASSERT_TRUE(Open("old", "").ok());
  Append(8, "forked");
  ASSERT_EQ(Size(), 13u);
  Close();
  absl::Status fork = Open("old", witness);
  EXPECT_EQ(fork.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(fork.message(), "fork:")) << fork;

  // The witness is unchanged by the refusals; the real database opens.
  ASSERT_TRUE(Open("db", witness).ok());
  EXPECT_EQ(Size(), 10u);
  Append(1, "third");
  EXPECT_EQ(Size(), 11u);
  Close();
  ASSERT_TRUE(Open("db", witness).ok());

  // Another deployment's witness is refused, not trusted.
  absl::Status foreign = Open("other", witness, "", "other-keys");
  EXPECT_EQ(foreign.code(), absl::StatusCode::kFailedPrecondition) << foreign;
  EXPECT_TRUE(absl::StrContains(foreign.message(), "not a checkpoint of"))
      << foreign;
}

TEST_F(AuditLogWitnessTest, FirstStartTrustsTheLogAndWitnessesIt) {
  const std::string witness = Path("w/witness");
  ASSERT_TRUE(Open("db", "").ok());
  Append(4, "before");
  Close();
  ASSERT_TRUE(Open("db", witness).ok());
  absl::StatusOr<audit::Checkpoint> witnessed = audit::VerifyCheckpoint(
      *ReadFile(witness), log_->signer().public_key_pem(), log_->origin());
  ASSERT_TRUE(witnessed.ok()) << witnessed.status();
  EXPECT_EQ(witnessed->size, 4u);
}

TEST(AuditLogDefaultWitnessTest, OnlyOutsideTheDataDirectory) {
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar", "/etc/dsar/keys"),
            "/etc/dsar/keys/checkpoint.witness");
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar", ""), "");
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar", "/srv/dsar/keys"), "");
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar", "/srv/dsar"), "");
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar/", "/srv/dsar/x/../k"), "");
  EXPECT_EQ(AuditLog::DefaultWitnessPath("/srv/dsar", "/srv/dsar-keys"),
            "/srv/dsar-keys/checkpoint.witness");
}

}  // namespace
}  // namespace dsar
