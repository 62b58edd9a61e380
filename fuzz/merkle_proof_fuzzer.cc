// RFC 9162 inclusion and consistency proofs as `dsarctl audit prove|verify`
// and `events` check them: sizes, indexes, roots and proof hashes all come
// from the server (GetInclusionProof, GetConsistencyProof) and must be
// checked, never trusted. Proof generation (the server's side) is checked
// against verification too.
//
// Input: byte 0 picks the mode (mod 4); the rest is read as fixed fields
// (little-endian integers, 32-byte hashes; missing bytes read as zeros),
// then proof hashes in 32-byte pieces (a last shorter piece is kept, to test
// hashes of the wrong length). fuzz/make_merkle_seeds.py writes seeds from
// the RFC 6962 vectors in storage/audit/testdata/rfc6962.
//   0 inclusion:   index u64, size u64, leaf hash, root, proof...
//   1 consistency: size1 u64, size2 u64, root1, root2, proof...
//   2 small tree:  leaves u16, index u16, size1 u16, leaf data...
//                  (a real CompactRange; every proof must verify)
//   3 big tree:    index u64, size u64, size1 u64 (every leaf alike but
//                  the one at index, so any size up to 2^64 - 1 works)

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_check.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"

namespace {

using dsar::merkle::kHashSize;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint64_t Integer(int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) {
      value |= static_cast<uint64_t>(Byte()) << (8 * i);
    }
    return value;
  }
  std::string Hash() {
    std::string hash;
    for (size_t i = 0; i < kHashSize; ++i) hash.push_back(Byte());
    return hash;
  }
  std::vector<std::string> Proof() {
    std::vector<std::string> proof;
    while (pos_ < size_) {
      size_t n = std::min(kHashSize, size_ - pos_);
      proof.emplace_back(reinterpret_cast<const char*>(data_ + pos_), n);
      pos_ += n;
    }
    return proof;
  }
  std::string Rest() {
    std::string rest(reinterpret_cast<const char*>(data_ + pos_), size_ - pos_);
    pos_ = size_;
    return rest;
  }

 private:
  char Byte() { return pos_ < size_ ? static_cast<char>(data_[pos_++]) : 0; }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

std::string Flipped(std::string hash) {
  hash[0] = static_cast<char>(hash[0] ^ 1);
  return hash;
}

void Inclusion(Reader& in) {
  uint64_t index = in.Integer(8);
  uint64_t size = in.Integer(8);
  std::string leaf = in.Hash();
  std::string root = in.Hash();
  std::vector<std::string> proof = in.Proof();
  absl::Status verified =
      dsar::merkle::VerifyInclusion(index, size, leaf, proof, root);
  absl::StatusOr<std::string> implied =
      dsar::merkle::RootFromInclusionProof(index, size, leaf, proof);
  FUZZ_CHECK(verified.ok() == (implied.ok() && *implied == root),
             verified.ToString());
  if (verified.ok()) {
    FUZZ_CHECK(index < size, "index outside the tree");
    FUZZ_CHECK(
        !dsar::merkle::VerifyInclusion(index, size, leaf, proof, Flipped(root))
             .ok(),
        "another root verifies");
  }
}

void Consistency(Reader& in) {
  uint64_t size1 = in.Integer(8);
  uint64_t size2 = in.Integer(8);
  std::string root1 = in.Hash();
  std::string root2 = in.Hash();
  std::vector<std::string> proof = in.Proof();
  absl::Status verified =
      dsar::merkle::VerifyConsistency(size1, size2, proof, root1, root2);
  if (verified.ok()) {
    FUZZ_CHECK(size1 <= size2, "smaller tree extends a bigger one");
    FUZZ_CHECK(size1 > 0 || size2 == 0, "consistency with the empty tree");
    FUZZ_CHECK(!dsar::merkle::VerifyConsistency(size1, size2, proof, root1,
                                                Flipped(root2))
                    .ok(),
               "another second root verifies");
  }
  // dsarctl's rollback and fork check on the same data.
  dsar::audit::Checkpoint remembered{"fuzz.example/log", size1, root1};
  dsar::audit::Checkpoint current{"fuzz.example/log", size2, root2};
  absl::Status extends = dsar::audit::CheckExtends(remembered, current, proof);
  if (size1 > 0 && size1 < size2) {
    FUZZ_CHECK(extends.ok() == verified.ok(), extends.ToString());
  }
  if (!extends.ok()) {
    FUZZ_CHECK(extends.code() == absl::StatusCode::kFailedPrecondition,
               extends.ToString());
  }
}

// Checks the proofs generated from `subtree` for a tree of `size` leaves
// whose root is `root`: they verify, and a changed hash does not.
void CheckGenerated(const dsar::merkle::SubtreeHashFn& subtree, uint64_t size,
                    const std::string& root, uint64_t index, uint64_t size1) {
  absl::StatusOr<std::vector<std::string>> inclusion =
      dsar::merkle::InclusionProof(subtree, index, size);
  FUZZ_CHECK(inclusion.ok(), inclusion.status().ToString());
  absl::StatusOr<std::string> leaf = subtree(0, index);
  FUZZ_CHECK(leaf.ok(), "leaf");
  absl::Status verified =
      dsar::merkle::VerifyInclusion(index, size, *leaf, *inclusion, root);
  FUZZ_CHECK(verified.ok(), absl::StrCat("inclusion of ", index, " in ", size,
                                         ": ", verified.ToString()));
  if (!inclusion->empty()) {
    std::vector<std::string> bad = *inclusion;
    bad.back() = Flipped(bad.back());
    FUZZ_CHECK(
        !dsar::merkle::VerifyInclusion(index, size, *leaf, bad, root).ok(),
        "a changed inclusion proof verifies");
  }

  absl::StatusOr<std::vector<std::string>> consistency =
      dsar::merkle::ConsistencyProof(subtree, size1, size);
  FUZZ_CHECK(consistency.ok(), consistency.status().ToString());
  absl::StatusOr<std::string> root1 = dsar::merkle::RootHash(subtree, size1);
  FUZZ_CHECK(root1.ok(), root1.status().ToString());
  verified =
      dsar::merkle::VerifyConsistency(size1, size, *consistency, *root1, root);
  FUZZ_CHECK(verified.ok(), absl::StrCat("consistency ", size1, " -> ", size,
                                         ": ", verified.ToString()));
  if (!consistency->empty()) {
    std::vector<std::string> bad = *consistency;
    bad.front() = Flipped(bad.front());
    FUZZ_CHECK(
        !dsar::merkle::VerifyConsistency(size1, size, bad, *root1, root).ok(),
        "a changed consistency proof verifies");
  }
}

void SmallTree(Reader& in) {
  uint64_t size = in.Integer(2) % 1024 + 1;
  uint64_t index = in.Integer(2) % size;
  uint64_t size1 = in.Integer(2) % size + 1;
  std::string data = in.Rest();
  std::map<std::pair<int, uint64_t>, std::string> stored;
  dsar::merkle::CompactRange range;
  for (uint64_t i = 0; i < size; ++i) {
    std::string entry =
        absl::StrCat(i, ":", data.substr(i % (data.size() + 1)));
    range.Append(dsar::merkle::LeafHash(entry),
                 [&](int level, uint64_t at, const std::string& hash) {
                   stored[{level, at}] = hash;
                 });
  }
  FUZZ_CHECK(range.size() == size, "CompactRange size");
  dsar::merkle::SubtreeHashFn subtree =
      [&](int level, uint64_t at) -> absl::StatusOr<std::string> {
    auto it = stored.find({level, at});
    FUZZ_CHECK(it != stored.end(),
               absl::StrCat("subtree ", level, "/", at, " was never stored"));
    return it->second;
  };
  absl::StatusOr<std::string> root = dsar::merkle::RootHash(subtree, size);
  FUZZ_CHECK(root.ok() && *root == range.RootHash(), "RootHash");
  // The edge rebuilt from the stored subtrees has the same root.
  std::vector<std::string> nodes;
  for (auto [level, at] : dsar::merkle::CompactRange::DecompositionOf(size)) {
    nodes.push_back(stored.at({level, at}));
  }
  absl::StatusOr<dsar::merkle::CompactRange> rebuilt =
      dsar::merkle::CompactRange::FromNodes(size, nodes);
  FUZZ_CHECK(rebuilt.ok() && rebuilt->RootHash() == *root, "FromNodes");
  CheckGenerated(subtree, size, *root, index, size1);
}

// A tree of any size whose subtree hashes are known without building it:
// every leaf hashes to the same value except the one at `marked`, so a
// perfect subtree's hash depends only on its level, unless it holds the
// marked leaf (one subtree per level).
class MarkedTree {
 public:
  explicit MarkedTree(uint64_t marked) : marked_(marked) {
    plain_.push_back(dsar::merkle::LeafHash("plain"));
    path_.push_back(dsar::merkle::LeafHash("marked"));
    for (int level = 0; level < 64; ++level) {
      plain_.push_back(dsar::merkle::NodeHash(plain_[level], plain_[level]));
      bool right = (marked_ >> level) & 1;
      path_.push_back(
          right ? dsar::merkle::NodeHash(plain_[level], path_[level])
                : dsar::merkle::NodeHash(path_[level], plain_[level]));
    }
  }

  std::string Hash(int level, uint64_t index) const {
    FUZZ_CHECK(level >= 0 && level < 64, absl::StrCat("level ", level));
    return (marked_ >> level) == index ? path_[level] : plain_[level];
  }

 private:
  uint64_t marked_;
  std::vector<std::string> plain_;  // By level.
  std::vector<std::string> path_;   // By level: subtrees holding `marked_`.
};

void BigTree(Reader& in) {
  uint64_t index = in.Integer(8);
  uint64_t size = in.Integer(8);
  uint64_t size1 = in.Integer(8);
  if (size == 0) return;
  index %= size;
  size1 = size1 % size + 1;
  MarkedTree tree(index);
  dsar::merkle::SubtreeHashFn subtree =
      [&tree](int level, uint64_t at) -> absl::StatusOr<std::string> {
    return tree.Hash(level, at);
  };
  absl::StatusOr<std::string> root = dsar::merkle::RootHash(subtree, size);
  FUZZ_CHECK(root.ok(), root.status().ToString());
  CheckGenerated(subtree, size, *root, index, size1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Reader in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      Inclusion(in);
      break;
    case 1:
      Consistency(in);
      break;
    case 2:
      SmallTree(in);
      break;
    default:
      BigTree(in);
      break;
  }
  return 0;
}
