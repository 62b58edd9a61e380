#include "storage/audit/merkle.h"

#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dsar::merkle {
namespace {

// Largest power of two strictly less than n. REQUIRES: n >= 2.
uint64_t LargestPowerOfTwoBelow(uint64_t n) {
  uint64_t k = 1;
  // k < n - k is 2k < n without computing 2k, which wraps to 0 once k is
  // 2^63 (for n > 2^63 the loop would never end).
  while (k < n - k) k <<= 1;
  return k;
}

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

int Log2(uint64_t power_of_two) {
  int level = 0;
  while ((uint64_t{1} << level) < power_of_two) ++level;
  return level;
}

int PopCount(uint64_t n) {
  int count = 0;
  for (; n != 0; n &= n - 1) ++count;
  return count;
}

absl::Status CheckHash(absl::string_view what, std::string_view hash) {
  if (hash.size() == kHashSize) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is ", hash.size(), " bytes, want ", kHashSize));
}

absl::Status CheckProofHashes(const std::vector<std::string>& proof) {
  for (size_t i = 0; i < proof.size(); ++i) {
    RETURN_IF_ERROR(CheckHash(absl::StrCat("proof element ", i), proof[i]));
  }
  return absl::OkStatus();
}

// Fetches a stored subtree hash and checks its size, so that a corrupt store
// yields an error rather than a wrong proof.
absl::StatusOr<std::string> FetchSubtree(const SubtreeHashFn& subtree,
                                         int level, uint64_t index) {
  ASSIGN_OR_RETURN(std::string hash, subtree(level, index));
  if (hash.size() != kHashSize) {
    return absl::DataLossError(absl::StrCat("stored subtree (level ", level,
                                            ", index ", index, ") is ",
                                            hash.size(), " bytes"));
  }
  return hash;
}

// PATH(index, D[begin:end]) from RFC 9162 §2.1.3.1, appended to `proof`
// deepest first. REQUIRES: begin <= index < end.
absl::Status AppendPath(const SubtreeHashFn& subtree, uint64_t index,
                        uint64_t begin, uint64_t end,
                        std::vector<std::string>& proof) {
  if (end - begin == 1) return absl::OkStatus();
  uint64_t split = begin + LargestPowerOfTwoBelow(end - begin);
  if (index < split) {
    RETURN_IF_ERROR(AppendPath(subtree, index, begin, split, proof));
    ASSIGN_OR_RETURN(std::string sibling, RangeHash(subtree, split, end));
    proof.push_back(std::move(sibling));
  } else {
    RETURN_IF_ERROR(AppendPath(subtree, index, split, end, proof));
    ASSIGN_OR_RETURN(std::string sibling, RangeHash(subtree, begin, split));
    proof.push_back(std::move(sibling));
  }
  return absl::OkStatus();
}

// SUBPROOF(m, D[begin:end], whole) from RFC 9162 §2.1.4.1, where m is
// `first_end - begin`, appended to `proof`. REQUIRES: begin < first_end <=
// end.
absl::Status AppendSubproof(const SubtreeHashFn& subtree, uint64_t first_end,
                            uint64_t begin, uint64_t end, bool whole,
                            std::vector<std::string>& proof) {
  if (first_end == end) {
    if (whole) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string hash, RangeHash(subtree, begin, end));
    proof.push_back(std::move(hash));
    return absl::OkStatus();
  }
  uint64_t split = begin + LargestPowerOfTwoBelow(end - begin);
  if (first_end <= split) {
    RETURN_IF_ERROR(
        AppendSubproof(subtree, first_end, begin, split, whole, proof));
    ASSIGN_OR_RETURN(std::string right, RangeHash(subtree, split, end));
    proof.push_back(std::move(right));
  } else {
    RETURN_IF_ERROR(
        AppendSubproof(subtree, first_end, split, end, false, proof));
    ASSIGN_OR_RETURN(std::string left, RangeHash(subtree, begin, split));
    proof.push_back(std::move(left));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LeafHash(std::string_view entry) {
  std::string hash(kHashSize, '\0');
  Sha256Concat({std::string_view("\x00", 1), entry},
               reinterpret_cast<unsigned char*>(hash.data()));
  return hash;
}

std::string NodeHash(std::string_view left, std::string_view right) {
  std::string hash(kHashSize, '\0');
  Sha256Concat({std::string_view("\x01", 1), left, right},
               reinterpret_cast<unsigned char*>(hash.data()));
  return hash;
}

std::string EmptyRootHash() {
  Sha256 hash;
  return hash.FinishRaw();
}

absl::StatusOr<std::string> RootFromInclusionProof(
    uint64_t index, uint64_t size, std::string_view leaf_hash,
    const std::vector<std::string>& proof) {
  if (size == 0) {
    return absl::InvalidArgumentError("inclusion in an empty tree");
  }
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf index ", index, " >= tree size ", size));
  }
  RETURN_IF_ERROR(CheckHash("leaf hash", leaf_hash));
  RETURN_IF_ERROR(CheckProofHashes(proof));

  // RFC 9162 §2.1.3.2, step by step.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inclusion proof too long: ", proof.size(), " elements"));
    }
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof too short: ", proof.size(), " elements"));
  }
  return r;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size,
                             std::string_view leaf_hash,
                             const std::vector<std::string>& proof,
                             std::string_view root) {
  RETURN_IF_ERROR(CheckHash("root hash", root));
  ASSIGN_OR_RETURN(std::string computed,
                   RootFromInclusionProof(index, size, leaf_hash, proof));
  if (computed != root) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inclusion proof of leaf ", index, " leads to another root"));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::string>& proof,
                               std::string_view root1, std::string_view root2) {
  RETURN_IF_ERROR(CheckHash("first root", root1));
  RETURN_IF_ERROR(CheckHash("second root", root2));
  RETURN_IF_ERROR(CheckProofHashes(proof));
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        absl::StrCat("first size ", size1, " > second size ", size2));
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof between equal sizes must be empty");
    }
    if (root1 != root2) {
      return absl::InvalidArgumentError("equal sizes but different roots");
    }
    return absl::OkStatus();
  }
  if (size1 == 0) {
    return absl::InvalidArgumentError(
        "consistency with the empty tree proves nothing");
  }
  if (proof.empty()) {
    return absl::InvalidArgumentError("empty consistency proof");
  }

  // RFC 9162 §2.1.4.2, step by step. Prepending first_hash when size1 is a
  // power of two is done by choosing where the walk starts.
  size_t next = 0;
  std::string fr;
  std::string sr;
  if (IsPowerOfTwo(size1)) {
    fr = std::string(root1);
  } else {
    fr = proof[0];
    next = 1;
  }
  sr = fr;
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; next < proof.size(); ++next) {
    const std::string& c = proof[next];
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "consistency proof too long: ", proof.size(), " elements"));
    }
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "consistency proof too short: ", proof.size(), " elements"));
  }
  if (fr != root1) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the first root");
  }
  if (sr != root2) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the second root");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RangeHash(const SubtreeHashFn& subtree,
                                      uint64_t begin, uint64_t end) {
  if (begin >= end) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty leaf range [", begin, ", ", end, ")"));
  }
  // MTH(D[begin:end]) = HASH(MTH(left) || MTH(right)) with the left part the
  // largest power of two below the size; a part that is an aligned perfect
  // subtree is read instead of recursed into. Left parts are collected and
  // folded from the right so the recursion does not grow the stack.
  std::vector<std::string> lefts;
  std::string hash;
  while (true) {
    uint64_t count = end - begin;
    if (IsPowerOfTwo(count) && begin % count == 0) {
      int level = Log2(count);
      ASSIGN_OR_RETURN(hash, FetchSubtree(subtree, level, begin >> level));
      break;
    }
    uint64_t split = begin + LargestPowerOfTwoBelow(count);
    ASSIGN_OR_RETURN(std::string left, RangeHash(subtree, begin, split));
    lefts.push_back(std::move(left));
    begin = split;
  }
  for (auto it = lefts.rbegin(); it != lefts.rend(); ++it) {
    hash = NodeHash(*it, hash);
  }
  return hash;
}

absl::StatusOr<std::string> RootHash(const SubtreeHashFn& subtree,
                                     uint64_t size) {
  if (size == 0) return EmptyRootHash();
  return RangeHash(subtree, 0, size);
}

absl::StatusOr<std::vector<std::string>> InclusionProof(
    const SubtreeHashFn& subtree, uint64_t index, uint64_t size) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf index ", index, " >= tree size ", size));
  }
  std::vector<std::string> proof;
  RETURN_IF_ERROR(AppendPath(subtree, index, 0, size, proof));
  return proof;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const SubtreeHashFn& subtree, uint64_t size1, uint64_t size2) {
  if (size1 == 0 || size1 > size2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no consistency proof from size ", size1, " to size ", size2));
  }
  std::vector<std::string> proof;
  RETURN_IF_ERROR(AppendSubproof(subtree, size1, 0, size2, true, proof));
  return proof;
}

absl::StatusOr<CompactRange> CompactRange::FromNodes(
    uint64_t size, std::vector<std::string> nodes) {
  int want = PopCount(size);
  if (nodes.size() != static_cast<size_t>(want)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a tree of ", size, " leaves has ", want,
                     " edge nodes, got ", nodes.size()));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    RETURN_IF_ERROR(CheckHash(absl::StrCat("edge node ", i), nodes[i]));
  }
  CompactRange range;
  range.size_ = size;
  range.nodes_ = std::move(nodes);
  return range;
}

std::vector<std::pair<int, uint64_t>> CompactRange::DecompositionOf(
    uint64_t size) {
  std::vector<std::pair<int, uint64_t>> result;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    uint64_t count = uint64_t{1} << level;
    if ((size & count) == 0) continue;
    result.emplace_back(level, begin >> level);
    begin += count;
  }
  return result;
}

void CompactRange::Append(
    std::string leaf_hash,
    const std::function<void(int level, uint64_t index,
                             const std::string& hash)>& on_subtree) {
  if (size_ == UINT64_MAX) {
    // Cannot happen: 2^64 - 1 appends.
    std::cerr << "CompactRange::Append: tree size would overflow uint64\n";
    std::abort();
  }
  std::string hash = std::move(leaf_hash);
  int level = 0;
  uint64_t index = size_;
  if (on_subtree) on_subtree(level, index, hash);
  // Each set low bit of the old size is a perfect subtree of that level
  // whose right sibling has just been completed: merge them.
  while ((size_ >> level) & 1) {
    hash = NodeHash(nodes_.back(), hash);
    nodes_.pop_back();
    ++level;
    index >>= 1;
    if (on_subtree) on_subtree(level, index, hash);
  }
  nodes_.push_back(std::move(hash));
  ++size_;
}

absl::Status CompactRange::AppendSubtree(int level, std::string hash) {
  if (level < 0 || level > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("subtree level ", level, " is not in [0, 63]"));
  }
  RETURN_IF_ERROR(CheckHash("subtree hash", hash));
  const uint64_t leaves = uint64_t{1} << level;
  if (size_ % leaves != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a subtree of ", leaves, " leaves cannot start at leaf ",
                     size_, ", which is not a multiple of its size"));
  }
  if (size_ > UINT64_MAX - leaves) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree size would overflow: ", size_, " + ", leaves));
  }
  // As in Append, one level up: every set bit of the old size at or above
  // `level` is a subtree to merge with.
  for (int at = level; at < 64 && ((size_ >> at) & 1); ++at) {
    hash = NodeHash(nodes_.back(), hash);
    nodes_.pop_back();
  }
  nodes_.push_back(std::move(hash));
  size_ += leaves;
  return absl::OkStatus();
}

std::string CompactRange::RootHash() const {
  if (nodes_.empty()) return EmptyRootHash();
  std::string hash = nodes_.back();
  for (auto it = nodes_.rbegin() + 1; it != nodes_.rend(); ++it) {
    hash = NodeHash(*it, hash);
  }
  return hash;
}

}  // namespace dsar::merkle
