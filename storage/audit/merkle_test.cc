#include "storage/audit/merkle.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar::merkle {
namespace {

namespace fs = std::filesystem;

// --- Known-answer vectors (transparency-dev/merkle testdata). ---

// Vectors whose expectation contradicts merkle.h, which requires every hash
// to be 32 bytes. They are still checked, against the contract instead.
const std::map<std::string, std::string>& ContractOverrides() {
  static const auto* overrides = new std::map<std::string, std::string>{
      {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
       "its roots are the 12 bytes \"don't care 2\"; upstream accepts any "
       "equal roots for equal sizes, merkle.h rejects hashes that are not 32 "
       "bytes"},
  };
  return *overrides;
}

// DSAR_RFC6962_VECTOR_DIR is set by storage/CMakeLists.txt to the in-repo
// copy, storage/audit/testdata/rfc6962, so the test needs no environment.
fs::path VectorDir() { return fs::path(DSAR_RFC6962_VECTOR_DIR); }

std::string Decode(const nlohmann::json& value) {
  std::string bytes;
  std::string text = value.get<std::string>();
  EXPECT_TRUE(absl::Base64Unescape(text, &bytes)) << "bad base64: " << text;
  return bytes;
}

std::vector<std::string> DecodeProof(const nlohmann::json& value) {
  std::vector<std::string> proof;
  if (value.is_null()) return proof;
  for (const auto& element : value) proof.push_back(Decode(element));
  return proof;
}

// Returns "" when the vector's outcome is as expected, else what went wrong.
std::string CheckVector(const std::string& relative,
                        const nlohmann::json& vector) {
  bool want_error = vector.at("wantErr").get<bool>();
  auto override_it = ContractOverrides().find(relative);
  if (override_it != ContractOverrides().end()) {
    if (want_error) {
      return "listed in ContractOverrides but now wants an error: drop it "
             "from the list";
    }
    want_error = true;
  }
  std::vector<std::string> proof = DecodeProof(vector.at("proof"));
  absl::Status status;
  if (vector.contains("leafIdx")) {
    uint64_t index = vector.at("leafIdx").get<uint64_t>();
    uint64_t size = vector.at("treeSize").get<uint64_t>();
    std::string leaf = Decode(vector.at("leafHash"));
    std::string root = Decode(vector.at("root"));
    status = VerifyInclusion(index, size, leaf, proof, root);
    absl::StatusOr<std::string> implied =
        RootFromInclusionProof(index, size, leaf, proof);
    if (status.ok() && (!implied.ok() || *implied != root)) {
      return "VerifyInclusion accepts but RootFromInclusionProof disagrees";
    }
  } else {
    status = VerifyConsistency(
        vector.at("size1").get<uint64_t>(), vector.at("size2").get<uint64_t>(),
        proof, Decode(vector.at("root1")), Decode(vector.at("root2")));
  }
  if (want_error && status.ok()) return "verification succeeded, want error";
  if (!want_error && !status.ok()) {
    return absl::StrCat("verification failed: ", status.ToString());
  }
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) {
    return absl::StrCat("want INVALID_ARGUMENT, got ", status.ToString());
  }
  return "";
}

TEST(MerkleVectors, AllKnownAnswerFilesPass) {
  fs::path dir = VectorDir();
  ASSERT_TRUE(fs::is_directory(dir))
      << "RFC 6962 vectors missing: " << dir.string();

  int files = 0;
  int inclusion = 0;
  int consistency = 0;
  int overridden = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    if (entry.path().extension() != ".json") continue;
    std::string relative = fs::relative(entry.path(), dir).generic_string();
    SCOPED_TRACE(relative);
    std::ifstream in(entry.path());
    nlohmann::json vector = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(vector.is_discarded()) << relative << ": invalid JSON";
    std::string problem = CheckVector(relative, vector);
    EXPECT_EQ(problem, "") << relative << " (" << vector.value("desc", "")
                           << ")";
    if (vector.contains("leafIdx")) {
      ++inclusion;
    } else {
      ++consistency;
    }
    if (ContractOverrides().count(relative) != 0) ++overridden;
  }
  ASSERT_GE(files, 150) << "only " << files << " files under " << dir.string()
                        << "; the vector set is incomplete";
  EXPECT_EQ(overridden, static_cast<int>(ContractOverrides().size()))
      << "a vector listed in ContractOverrides was not found";
  std::cout << "[ vectors  ] " << inclusion << " inclusion + " << consistency
            << " consistency vector files checked (" << overridden
            << " against merkle.h instead of wantErr)\n";
}

// --- Naive reference implementations, straight from RFC 9162 §2.1. ---

uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

std::string NaiveMth(const std::vector<std::string>& leaves, uint64_t begin,
                     uint64_t end) {
  if (end == begin) return EmptyRootHash();
  if (end - begin == 1) return leaves[begin];
  uint64_t k = SplitPoint(end - begin);
  return NodeHash(NaiveMth(leaves, begin, begin + k),
                  NaiveMth(leaves, begin + k, end));
}

std::vector<std::string> NaivePath(const std::vector<std::string>& leaves,
                                   uint64_t m, uint64_t begin, uint64_t end) {
  if (end - begin == 1) return {};
  uint64_t k = SplitPoint(end - begin);
  std::vector<std::string> path;
  if (m < k) {
    path = NaivePath(leaves, m, begin, begin + k);
    path.push_back(NaiveMth(leaves, begin + k, end));
  } else {
    path = NaivePath(leaves, m - k, begin + k, end);
    path.push_back(NaiveMth(leaves, begin, begin + k));
  }
  return path;
}

std::vector<std::string> NaiveSubproof(const std::vector<std::string>& leaves,
                                       uint64_t m, uint64_t begin, uint64_t end,
                                       bool whole) {
  uint64_t n = end - begin;
  if (m == n) {
    if (whole) return {};
    return {NaiveMth(leaves, begin, end)};
  }
  uint64_t k = SplitPoint(n);
  std::vector<std::string> proof;
  if (m <= k) {
    proof = NaiveSubproof(leaves, m, begin, begin + k, whole);
    proof.push_back(NaiveMth(leaves, begin + k, end));
  } else {
    proof = NaiveSubproof(leaves, m - k, begin + k, end, false);
    proof.push_back(NaiveMth(leaves, begin, begin + k));
  }
  return proof;
}

// --- Generation against verification. ---

constexpr uint64_t kMaxSize = 70;

class MerkleTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t i = 0; i < kMaxSize + 20; ++i) {
      leaves_.push_back(LeafHash(absl::StrCat("leaf ", i)));
    }
  }

  // Stored subtrees as a tree of `size` leaves may ask for them; asking for
  // one that is not complete within that tree fails the test.
  SubtreeHashFn Stored(uint64_t size) const {
    return
        [this, size](int level, uint64_t index) -> absl::StatusOr<std::string> {
          EXPECT_LE((index + 1) << level, size)
              << "asked for incomplete subtree (" << level << ", " << index
              << ") of a tree of " << size;
          auto it = stored_.find({level, index});
          if (it == stored_.end()) {
            return absl::NotFoundError(
                absl::StrCat("no subtree ", level, "/", index));
          }
          return it->second;
        };
  }

  // Appends leaves_[range.size()] to `range`, recording what it reports in
  // `stored_` and checking each report against the naive MTH.
  void AppendNext(CompactRange& range) {
    uint64_t index = range.size();
    int expected_level = 0;
    range.Append(leaves_[index], [&](int level, uint64_t subtree_index,
                                     const std::string& hash) {
      EXPECT_EQ(level, expected_level++) << "reports out of order";
      EXPECT_EQ(subtree_index, index >> level);
      uint64_t begin = subtree_index << level;
      EXPECT_EQ(hash, NaiveMth(leaves_, begin, begin + (uint64_t{1} << level)))
          << "subtree " << level << "/" << subtree_index;
      stored_[{level, subtree_index}] = hash;
    });
    // One report per trailing one bit of the old size, plus the leaf.
    int trailing_ones = 0;
    while ((index >> trailing_ones) & 1) ++trailing_ones;
    EXPECT_EQ(expected_level, trailing_ones + 1);
  }

  std::vector<std::string> leaves_;
  std::map<std::pair<int, uint64_t>, std::string> stored_;
};

TEST_F(MerkleTreeTest, HashingMatchesRfc) {
  // SHA-256("") and SHA-256(0x00), the RFC 6962 test-vector values.
  EXPECT_EQ(absl::BytesToHexString(EmptyRootHash()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(absl::BytesToHexString(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  // SHA-256(0x01 || "a" || "b"): concatenation with no length prefixes.
  EXPECT_EQ(NodeHash("a", "b"), NodeHash("", "ab"));
  EXPECT_EQ(absl::BytesToHexString(NodeHash("a", "b")),
            "170404e05440f45062c423052d5adcfb2c9d546ecfcb2022d6c34af474dbaf18");
}

TEST_F(MerkleTreeTest, RootsProofsAndRebuildAgreeForEverySizeUpTo70) {
  CompactRange range;
  EXPECT_EQ(range.RootHash(), EmptyRootHash());
  absl::StatusOr<std::string> empty_root = RootHash(Stored(0), 0);
  ASSERT_TRUE(empty_root.ok());
  EXPECT_EQ(*empty_root, EmptyRootHash());

  for (uint64_t size = 1; size <= kMaxSize; ++size) {
    SCOPED_TRACE(absl::StrCat("tree size ", size));
    AppendNext(range);
    ASSERT_EQ(range.size(), size);
    std::string naive_root = NaiveMth(leaves_, 0, size);
    EXPECT_EQ(range.RootHash(), naive_root);
    absl::StatusOr<std::string> stored_root = RootHash(Stored(size), size);
    ASSERT_TRUE(stored_root.ok()) << stored_root.status();
    EXPECT_EQ(*stored_root, naive_root);

    for (uint64_t index = 0; index < size; ++index) {
      absl::StatusOr<std::vector<std::string>> proof =
          InclusionProof(Stored(size), index, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, NaivePath(leaves_, index, 0, size)) << index;
      EXPECT_TRUE(
          VerifyInclusion(index, size, leaves_[index], *proof, naive_root).ok())
          << "leaf " << index;
      if (size > 1) {
        EXPECT_FALSE(VerifyInclusion((index + 1) % size, size, leaves_[index],
                                     *proof, naive_root)
                         .ok())
            << "leaf " << index << " accepted at another index";
      }
      for (size_t i = 0; i < proof->size(); ++i) {
        std::vector<std::string> flipped = *proof;
        flipped[i][0] ^= 1;
        EXPECT_FALSE(
            VerifyInclusion(index, size, leaves_[index], flipped, naive_root)
                .ok())
            << "leaf " << index << " element " << i << " flipped";
      }
    }

    for (uint64_t size1 = 1; size1 <= size; ++size1) {
      absl::StatusOr<std::vector<std::string>> proof =
          ConsistencyProof(Stored(size), size1, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, NaiveSubproof(leaves_, size1, 0, size, true)) << size1;
      std::string root1 = NaiveMth(leaves_, 0, size1);
      EXPECT_TRUE(
          VerifyConsistency(size1, size, *proof, root1, naive_root).ok())
          << size1 << " -> " << size;
      for (size_t i = 0; i < proof->size(); ++i) {
        std::vector<std::string> flipped = *proof;
        flipped[i][kHashSize - 1] ^= static_cast<char>(0x40);
        EXPECT_FALSE(
            VerifyConsistency(size1, size, flipped, root1, naive_root).ok())
            << size1 << " -> " << size << " element " << i << " flipped";
      }
      if (size1 < size) {
        std::string other = NaiveMth(leaves_, 0, size1 - 1);
        EXPECT_FALSE(
            VerifyConsistency(size1, size, *proof, other, naive_root).ok());
        EXPECT_FALSE(VerifyConsistency(size1, size, *proof, root1, root1).ok());
      }
    }

    // Rebuild the edge from stored nodes, as at start-up, and continue.
    std::vector<std::string> nodes;
    for (const auto& [level, index] : CompactRange::DecompositionOf(size)) {
      auto it = stored_.find({level, index});
      ASSERT_NE(it, stored_.end()) << level << "/" << index;
      nodes.push_back(it->second);
    }
    absl::StatusOr<CompactRange> rebuilt = CompactRange::FromNodes(size, nodes);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ(rebuilt->size(), size);
    EXPECT_EQ(rebuilt->nodes(), range.nodes());
    EXPECT_EQ(rebuilt->RootHash(), naive_root);
    auto saved = stored_;
    for (uint64_t more = size + 1; more <= size + 17; ++more) {
      AppendNext(*rebuilt);
      EXPECT_EQ(rebuilt->RootHash(), NaiveMth(leaves_, 0, more))
          << "rebuilt at " << size << ", now " << more;
    }
    stored_ = std::move(saved);
  }

  // Every leaf range, aligned or not, against the naive MTH.
  for (uint64_t begin = 0; begin < kMaxSize; ++begin) {
    for (uint64_t end = begin + 1; end <= kMaxSize; ++end) {
      absl::StatusOr<std::string> hash =
          RangeHash(Stored(kMaxSize), begin, end);
      ASSERT_TRUE(hash.ok()) << hash.status();
      EXPECT_EQ(*hash, NaiveMth(leaves_, begin, end))
          << "[" << begin << ", " << end << ")";
    }
  }
}

TEST_F(MerkleTreeTest, AppendSubtreeEqualsAppendingItsLeaves) {
  // Every aligned subtree appended at every size it may start at: the
  // edge is the one leaf-by-leaf appends build.
  for (int level = 0; level <= 4; ++level) {
    const uint64_t leaves = uint64_t{1} << level;
    for (uint64_t size = 0; size + leaves <= kMaxSize; size += leaves) {
      CompactRange by_leaf;
      while (by_leaf.size() < size) AppendNext(by_leaf);
      CompactRange by_subtree = by_leaf;
      absl::Status appended = by_subtree.AppendSubtree(
          level, NaiveMth(leaves_, size, size + leaves));
      ASSERT_TRUE(appended.ok()) << appended;
      while (by_leaf.size() < size + leaves) AppendNext(by_leaf);
      EXPECT_EQ(by_subtree.size(), by_leaf.size());
      EXPECT_EQ(by_subtree.nodes(), by_leaf.nodes())
          << "level " << level << " at " << size;
    }
  }
}

TEST_F(MerkleTreeTest, AppendSubtreeRejectsMisalignedOrBadSubtrees) {
  CompactRange range;
  for (int i = 0; i < 6; ++i) AppendNext(range);
  // 6 leaves: a subtree of 4 would start at leaf 6, not a multiple of 4.
  EXPECT_EQ(range.AppendSubtree(2, leaves_[0]).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(range.AppendSubtree(1, "short").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(range.AppendSubtree(64, leaves_[0]).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(range.AppendSubtree(-1, leaves_[0]).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(range.size(), 6u) << "a refused subtree changed the range";
  EXPECT_TRUE(range.AppendSubtree(1, leaves_[0]).ok());
  EXPECT_EQ(range.size(), 8u);
}

TEST_F(MerkleTreeTest, DecompositionIsOneNodePerSetBitLargestFirst) {
  using Nodes = std::vector<std::pair<int, uint64_t>>;
  EXPECT_EQ(CompactRange::DecompositionOf(0), Nodes{});
  EXPECT_EQ(CompactRange::DecompositionOf(1), (Nodes{{0, 0}}));
  EXPECT_EQ(CompactRange::DecompositionOf(8), (Nodes{{3, 0}}));
  EXPECT_EQ(CompactRange::DecompositionOf(13),
            (Nodes{{3, 0}, {2, 2}, {0, 12}}));
  EXPECT_EQ(CompactRange::DecompositionOf(UINT64_MAX).size(), 64u);
}

TEST_F(MerkleTreeTest, RejectsBadArguments) {
  CompactRange range;
  for (int i = 0; i < 7; ++i) AppendNext(range);
  std::string root = range.RootHash();

  // Inclusion: size 0, index out of range.
  EXPECT_EQ(VerifyInclusion(0, 0, leaves_[0], {}, EmptyRootHash()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(RootFromInclusionProof(0, 0, leaves_[0], {}).ok());
  EXPECT_FALSE(VerifyInclusion(7, 7, leaves_[0], {}, root).ok());
  EXPECT_FALSE(InclusionProof(Stored(7), 7, 7).ok());
  EXPECT_FALSE(InclusionProof(Stored(0), 0, 0).ok());

  // Every hash must be 32 bytes: leaf, root, each proof element.
  absl::StatusOr<std::vector<std::string>> proof =
      InclusionProof(Stored(7), 2, 7);
  ASSERT_TRUE(proof.ok());
  ASSERT_TRUE(VerifyInclusion(2, 7, leaves_[2], *proof, root).ok());
  for (size_t length : {size_t{0}, size_t{31}, size_t{33}}) {
    auto resize = [length](std::string hash) {
      hash.resize(length, '\0');
      return hash;
    };
    EXPECT_FALSE(VerifyInclusion(2, 7, resize(leaves_[2]), *proof, root).ok());
    EXPECT_FALSE(VerifyInclusion(2, 7, leaves_[2], *proof, resize(root)).ok());
    EXPECT_FALSE(RootFromInclusionProof(2, 7, resize(leaves_[2]), *proof).ok());
    for (size_t i = 0; i < proof->size(); ++i) {
      std::vector<std::string> bad = *proof;
      bad[i] = resize(bad[i]);
      EXPECT_FALSE(VerifyInclusion(2, 7, leaves_[2], bad, root).ok());
    }
    // Equal sizes compare roots only, yet still insist on 32 bytes.
    EXPECT_FALSE(VerifyConsistency(7, 7, {}, resize(root), resize(root)).ok());
    absl::StatusOr<std::vector<std::string>> consistency =
        ConsistencyProof(Stored(7), 3, 7);
    ASSERT_TRUE(consistency.ok());
    std::string root3 = NaiveMth(leaves_, 0, 3);
    ASSERT_TRUE(VerifyConsistency(3, 7, *consistency, root3, root).ok());
    EXPECT_FALSE(
        VerifyConsistency(3, 7, *consistency, resize(root3), root).ok());
    EXPECT_FALSE(
        VerifyConsistency(3, 7, *consistency, root3, resize(root)).ok());
    for (size_t i = 0; i < consistency->size(); ++i) {
      std::vector<std::string> bad = *consistency;
      bad[i] = resize(bad[i]);
      EXPECT_FALSE(VerifyConsistency(3, 7, bad, root3, root).ok());
    }
  }

  // Consistency: sizes.
  EXPECT_TRUE(VerifyConsistency(7, 7, {}, root, root).ok());
  EXPECT_FALSE(VerifyConsistency(7, 7, {root}, root, root).ok());
  EXPECT_FALSE(VerifyConsistency(0, 7, {}, EmptyRootHash(), root).ok());
  EXPECT_FALSE(VerifyConsistency(7, 3, {}, root, root).ok());
  EXPECT_FALSE(VerifyConsistency(3, 7, {}, root, root).ok());
  EXPECT_FALSE(ConsistencyProof(Stored(7), 0, 7).ok());
  EXPECT_FALSE(ConsistencyProof(Stored(7), 5, 4).ok());
  EXPECT_FALSE(RangeHash(Stored(7), 3, 3).ok());

  // Rebuild: wrong node count or hash size.
  EXPECT_FALSE(CompactRange::FromNodes(7, {root, root}).ok());
  EXPECT_FALSE(CompactRange::FromNodes(4, {}).ok());
  EXPECT_FALSE(CompactRange::FromNodes(2, {root.substr(1)}).ok());
  EXPECT_TRUE(CompactRange::FromNodes(0, {}).ok());
}

TEST_F(MerkleTreeTest, PropagatesStoreErrors) {
  SubtreeHashFn missing = [](int, uint64_t) -> absl::StatusOr<std::string> {
    return absl::UnavailableError("store down");
  };
  EXPECT_EQ(RootHash(missing, 5).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(InclusionProof(missing, 1, 5).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ConsistencyProof(missing, 3, 5).status().code(),
            absl::StatusCode::kUnavailable);
  SubtreeHashFn short_hash = [](int, uint64_t) -> absl::StatusOr<std::string> {
    return std::string(31, 'x');
  };
  EXPECT_EQ(RootHash(short_hash, 5).status().code(),
            absl::StatusCode::kDataLoss);
}

// Every leaf hashes alike except the one at `marked`, so the hash of any
// perfect subtree is known without building a tree of 2^63 leaves.
class MarkedTree {
 public:
  explicit MarkedTree(uint64_t marked) : marked_(marked) {
    plain_.push_back(LeafHash("plain"));
    path_.push_back(LeafHash("marked"));
    for (int level = 0; level < 64; ++level) {
      plain_.push_back(NodeHash(plain_[level], plain_[level]));
      path_.push_back((marked_ >> level) & 1
                          ? NodeHash(plain_[level], path_[level])
                          : NodeHash(path_[level], plain_[level]));
    }
  }
  SubtreeHashFn Subtrees() const {
    return [this](int level, uint64_t index) -> absl::StatusOr<std::string> {
      return (marked_ >> level) == index ? path_[level] : plain_[level];
    };
  }

 private:
  uint64_t marked_;
  std::vector<std::string> plain_, path_;  // By level.
};

// Found by fuzz/merkle_proof_fuzzer (fuzz/corpus/merkle_proof/big_tree_*):
// splitting a range of more than 2^63 leaves looped forever.
TEST_F(MerkleTreeTest, ProofsForTreesOfMoreThan2To63Leaves) {
  const uint64_t kSizes[] = {(uint64_t{1} << 63) + 1, ~uint64_t{0}};
  for (uint64_t size : kSizes) {
    for (uint64_t index : {uint64_t{12345}, size - 1}) {
      MarkedTree tree(index);
      SubtreeHashFn subtrees = tree.Subtrees();
      absl::StatusOr<std::string> root = RootHash(subtrees, size);
      ASSERT_TRUE(root.ok()) << root.status();
      absl::StatusOr<std::vector<std::string>> proof =
          InclusionProof(subtrees, index, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_TRUE(
          VerifyInclusion(index, size, *subtrees(0, index), *proof, *root).ok())
          << size << " " << index;
      const uint64_t size1 = uint64_t{1} << 62;
      absl::StatusOr<std::vector<std::string>> consistency =
          ConsistencyProof(subtrees, size1, size);
      ASSERT_TRUE(consistency.ok()) << consistency.status();
      EXPECT_TRUE(VerifyConsistency(size1, size, *consistency,
                                    *RootHash(subtrees, size1), *root)
                      .ok());
    }
  }
}

}  // namespace
}  // namespace dsar::merkle
