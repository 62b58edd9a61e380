// AuditLog on a real state database: the origin it picks, and the checkpoint
// witness that makes a restored older database refuse to open.

#include "storage/audit/audit_log.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gtest/gtest.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"
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

  // The tree as the stored leaves make it, independent of the hashes the
  // log stores: the reference proofs are checked against.
  merkle::SubtreeHashFn FromLeaves() {
    return [this](int level, uint64_t index) -> absl::StatusOr<std::string> {
      std::vector<std::string> leaves;
      absl::Status read =
          store_->GetAuditLeaves(index << level, (index + 1) << level, &leaves);
      if (!read.ok()) return read;
      merkle::CompactRange subtree;
      for (const std::string& leaf : leaves) {
        subtree.Append(merkle::LeafHash(leaf),
                       [](int, uint64_t, const std::string&) {});
      }
      return subtree.RootHash();
    };
  }

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

// Proofs are computed from subtrees fetched together (upper levels kept in
// memory once read): every proof of a log past 2^11 leaves, asked twice so
// that the second comes from memory, verifies against the root computed
// from the stored hashes.
TEST_F(AuditLogWitnessTest, ProofsFromFetchedSubtreesVerify) {
  ASSERT_TRUE(Open("state", "").ok());
  for (int group = 0; group < 5; ++group) {
    ASSERT_NO_FATAL_FAILURE(Append(group == 0 ? 1 : 750, "proof"));
  }
  const uint64_t size = Size();
  ASSERT_EQ(size, 3001u);
  const merkle::SubtreeHashFn stored = FromLeaves();
  for (uint64_t tree_size :
       {uint64_t{1}, uint64_t{1025}, uint64_t{2048}, size}) {
    absl::StatusOr<std::string> root = merkle::RootHash(stored, tree_size);
    ASSERT_TRUE(root.ok()) << root.status();
    for (uint64_t index : {uint64_t{0}, uint64_t{1}, uint64_t{1023},
                           uint64_t{1024}, uint64_t{2047}, size - 1}) {
      if (index >= tree_size) continue;
      absl::StatusOr<std::string> leaf = stored(0, index);
      ASSERT_TRUE(leaf.ok()) << leaf.status();
      for (int round = 0; round < 2; ++round) {
        v1::GetInclusionProofRequest request;
        request.set_index(index);
        request.set_tree_size(tree_size);
        absl::StatusOr<v1::GetInclusionProofResponse> proof =
            log_->GetInclusionProof(request);
        ASSERT_TRUE(proof.ok()) << proof.status();
        std::vector<std::string> hashes(proof->proof().begin(),
                                        proof->proof().end());
        EXPECT_TRUE(
            merkle::VerifyInclusion(index, tree_size, *leaf, hashes, *root)
                .ok())
            << "index " << index << " of " << tree_size << ", round " << round;
      }
    }
  }
  for (const auto& [first, second] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, size}, {1000, size}, {1024, 2048}, {2047, size}}) {
    v1::GetConsistencyProofRequest request;
    request.set_first_size(first);
    request.set_second_size(second);
    absl::StatusOr<v1::GetConsistencyProofResponse> proof =
        log_->GetConsistencyProof(request);
    ASSERT_TRUE(proof.ok()) << proof.status();
    std::vector<std::string> hashes(proof->proof().begin(),
                                    proof->proof().end());
    absl::StatusOr<std::string> root1 = merkle::RootHash(stored, first);
    absl::StatusOr<std::string> root2 = merkle::RootHash(stored, second);
    ASSERT_TRUE(root1.ok() && root2.ok());
    EXPECT_TRUE(
        merkle::VerifyConsistency(first, second, hashes, *root1, *root2).ok())
        << first << " -> " << second;
  }
}

// Subtrees of level >= 6 are held in memory: written by Append, or read
// from the store once (with their neighbours) when the log was opened over
// an existing tree. A stored copy changed afterwards is not read again.
TEST_F(AuditLogWitnessTest, UpperLevelsOfProofsComeFromMemory) {
  ASSERT_TRUE(Open("db", "").ok());
  Append(1500, "a");
  Append(1501, "b");
  const uint64_t size = Size();
  const merkle::SubtreeHashFn stored = FromLeaves();
  const std::vector<uint64_t> indexes = {0, 100, 2047, size - 1};
  std::vector<std::vector<std::string>> expected;
  for (uint64_t index : indexes) {
    absl::StatusOr<std::vector<std::string>> proof =
        merkle::InclusionProof(stored, index, size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    expected.push_back(*proof);
  }
  // Proof hashes of leaf 0 at levels 6 and 7, and of leaf 2047 at 8.
  const std::vector<std::pair<int, uint64_t>> upper = {{6, 1}, {7, 1}, {8, 6}};
  std::vector<std::string> originals;
  for (const auto& [level, index] : upper) {
    originals.push_back(*store_->GetAuditHash(level, index));
  }
  auto overwrite = [&](bool garbage) {
    StateBatch batch = store_->NewBatch();
    for (size_t i = 0; i < upper.size(); ++i) {
      batch.PutAuditHash(upper[i].first, upper[i].second,
                         garbage ? std::string(32, 'x') : originals[i]);
    }
    ASSERT_TRUE(store_->Commit(batch).ok());
  };
  auto expect_proofs = [&](const std::string& when) {
    for (size_t i = 0; i < indexes.size(); ++i) {
      v1::GetInclusionProofRequest request;
      request.set_index(indexes[i]);
      absl::StatusOr<v1::GetInclusionProofResponse> proof =
          log_->GetInclusionProof(request);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(std::vector<std::string>(proof->proof().begin(),
                                         proof->proof().end()),
                expected[i])
          << when << ", leaf " << indexes[i];
    }
  };

  // Append put them in memory: the stored copies are not read.
  overwrite(/*garbage=*/true);
  expect_proofs("after appends");

  // A log opened over the tree reads them from the store once.
  overwrite(/*garbage=*/false);
  Close();
  ASSERT_TRUE(Open("db", "").ok());
  expect_proofs("after reopening");
  overwrite(/*garbage=*/true);
  expect_proofs("after reopening, stored copies changed");

  // Levels below 4 are hashed from the leaves every time: a changed leaf
  // shows in the proofs that cover it.
  absl::StatusOr<std::string> leaf = store_->GetAuditLeaf(1);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  {
    StateBatch batch = store_->NewBatch();
    batch.PutAuditLeaf(1, *leaf + "x");
    ASSERT_TRUE(store_->Commit(batch).ok());
  }
  v1::GetInclusionProofRequest request;
  request.set_index(0);
  absl::StatusOr<v1::GetInclusionProofResponse> proof =
      log_->GetInclusionProof(request);
  ASSERT_TRUE(proof.ok()) << proof.status();
  ASSERT_GT(proof->proof_size(), 5);
  absl::StatusOr<std::string> changed = stored(0, 1);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_NE(*changed, expected[0][0]);
  EXPECT_EQ(proof->proof(0), *changed);
}

// An event writes its leaf, and a subtree hash only when a subtree of 16
// leaves or more completes; the right edge is rebuilt from leaves and those
// hashes. Hashes of lower levels that an older dsard stored are not read.
TEST_F(AuditLogWitnessTest, StoresSubtreeHashesFromLevelFourUp) {
  ASSERT_TRUE(Open("db", "").ok());
  Append(200, "a");
  EXPECT_EQ(store_->GetAuditHash(0, 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetAuditHash(3, 2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetAuditHash(4, 11).ok());
  EXPECT_TRUE(store_->GetAuditHash(6, 2).ok());
  EXPECT_EQ(store_->GetAuditHash(4, 12).status().code(),
            absl::StatusCode::kNotFound);  // Leaves 192-207: not complete.
  absl::StatusOr<std::string> root = merkle::RootHash(FromLeaves(), 200);
  ASSERT_TRUE(root.ok()) << root.status();
  {
    // As an older dsard left them, but wrong: not read.
    StateBatch batch = store_->NewBatch();
    for (int level = 0; level < 4; ++level) {
      batch.PutAuditHash(level, 192 >> level, std::string(32, 'z'));
    }
    ASSERT_TRUE(store_->Commit(batch).ok());
  }
  Close();
  ASSERT_TRUE(Open("db", "").ok());
  Append(1, "b");  // Extends the right edge rebuilt at Open.
  absl::StatusOr<std::string> extended = merkle::RootHash(FromLeaves(), 201);
  ASSERT_TRUE(extended.ok()) << extended.status();
  v1::GetConsistencyProofRequest request;
  request.set_first_size(200);
  request.set_second_size(201);
  absl::StatusOr<v1::GetConsistencyProofResponse> proof =
      log_->GetConsistencyProof(request);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(
      merkle::VerifyConsistency(200, 201,
                                std::vector<std::string>(proof->proof().begin(),
                                                         proof->proof().end()),
                                *root, *extended)
          .ok());
  absl::StatusOr<v1::GetCheckpointResponse> checkpoint = log_->GetCheckpoint();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<audit::Checkpoint> signed_checkpoint = audit::VerifyCheckpoint(
      checkpoint->checkpoint(), log_->signer().public_key_pem(),
      log_->signer().key_name());
  ASSERT_TRUE(signed_checkpoint.ok()) << signed_checkpoint.status();
  EXPECT_EQ(signed_checkpoint->root_hash, *extended);

  // A leaf of the edge's last, incomplete subtree altered: the edge no
  // longer makes the signed root, and the log refuses to be extended.
  absl::StatusOr<std::string> leaf = store_->GetAuditLeaf(195);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  {
    StateBatch batch = store_->NewBatch();
    batch.PutAuditLeaf(195, *leaf + "x");
    ASSERT_TRUE(store_->Commit(batch).ok());
  }
  Close();
  absl::Status reopened = Open("db", "");
  EXPECT_EQ(reopened.code(), absl::StatusCode::kDataLoss) << reopened;
  EXPECT_TRUE(absl::StrContains(reopened.message(), "signed checkpoint"))
      << reopened;
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
