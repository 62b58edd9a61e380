#ifndef DSAR_STORAGE_AUDIT_MERKLE_H_
#define DSAR_STORAGE_AUDIT_MERKLE_H_

// RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and
// their verification, for any tree size. Hashes are 32-byte raw strings.
//   leaf hash  = SHA-256(0x00 || entry)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH({})    = SHA-256("")
// docs/audit-log.md describes how the log uses them.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar::merkle {

inline constexpr size_t kHashSize = 32;

std::string LeafHash(std::string_view entry);
std::string NodeHash(std::string_view left, std::string_view right);
std::string EmptyRootHash();

// --- Verification (RFC 9162 §2.1.3.2 and §2.1.4.2). All return OK or
// INVALID_ARGUMENT saying what does not hold; every hash must be 32 bytes.

// Inclusion of the leaf with hash `leaf_hash` at `index` in the tree of
// `size` leaves whose root is `root`. size 0 is always rejected.
absl::Status VerifyInclusion(uint64_t index, uint64_t size,
                             std::string_view leaf_hash,
                             const std::vector<std::string>& proof,
                             std::string_view root);

// Root implied by an inclusion proof (the same checks, without a root).
absl::StatusOr<std::string> RootFromInclusionProof(
    uint64_t index, uint64_t size, std::string_view leaf_hash,
    const std::vector<std::string>& proof);

// The tree of size2 with root2 extends the tree of size1 with root1.
// size1 == size2 requires an empty proof and equal roots; size1 == 0 with
// size2 > 0 is rejected (nothing to prove); size1 > size2 is rejected.
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::string>& proof,
                               std::string_view root1, std::string_view root2);

// --- Proof generation over stored perfect subtrees.

// Returns the hash of the perfect subtree at `level` and `index`, i.e. of
// leaves [index << level, (index + 1) << level). Level 0 is a leaf hash.
// Only called for subtrees that are complete within the tree asked about.
using SubtreeHashFn =
    std::function<absl::StatusOr<std::string>(int level, uint64_t index)>;

// MTH of leaves [begin, end), computed from perfect subtrees: O(log n)
// lookups when begin is a multiple of the smallest power of two >= end -
// begin (every range of a root or a proof is), more otherwise.
// INVALID_ARGUMENT when begin >= end; errors of `subtree` are returned as
// they are, and a stored hash that is not 32 bytes is DATA_LOSS.
absl::StatusOr<std::string> RangeHash(const SubtreeHashFn& subtree,
                                      uint64_t begin, uint64_t end);

// Root of the tree of `size` leaves (EmptyRootHash for 0).
absl::StatusOr<std::string> RootHash(const SubtreeHashFn& subtree,
                                     uint64_t size);

// RFC 9162 PATH(index, D[size]). INVALID_ARGUMENT when index >= size.
absl::StatusOr<std::vector<std::string>> InclusionProof(
    const SubtreeHashFn& subtree, uint64_t index, uint64_t size);

// RFC 9162 PROOF(size1, D[size2]). INVALID_ARGUMENT unless
// 0 < size1 <= size2.
absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const SubtreeHashFn& subtree, uint64_t size1, uint64_t size2);

// The right edge of an append-only tree: the roots of the perfect subtrees
// that make up its binary decomposition, left to right. Appends are
// O(log n) hashing and report each perfect subtree they complete so the
// caller can store it; the root is O(log n).
class CompactRange {
 public:
  CompactRange() = default;

  // Rebuilds the edge of a tree of `size` leaves from its decomposition:
  // `nodes[i]` is the hash of the i-th perfect subtree, largest first (one
  // per set bit of size, from the highest). INVALID_ARGUMENT when the count
  // or a hash size is wrong.
  static absl::StatusOr<CompactRange> FromNodes(uint64_t size,
                                                std::vector<std::string> nodes);

  // The (level, index) of each node FromNodes expects for `size`, in order.
  static std::vector<std::pair<int, uint64_t>> DecompositionOf(uint64_t size);

  // Appends a leaf hash. Calls `on_subtree(level, index, hash)` for every
  // perfect subtree completed by this leaf, level 0 (the leaf) first.
  void Append(std::string leaf_hash,
              const std::function<void(int level, uint64_t index,
                                       const std::string& hash)>& on_subtree);

  // Appends the perfect subtree of 2^level leaves whose root is `hash`,
  // as appending its leaves one by one would. INVALID_ARGUMENT unless
  // size() is a multiple of 2^level (the subtree must be aligned), level is
  // below 64 and the hash is 32 bytes.
  absl::Status AppendSubtree(int level, std::string hash);

  uint64_t size() const { return size_; }
  std::string RootHash() const;
  const std::vector<std::string>& nodes() const { return nodes_; }

 private:
  uint64_t size_ = 0;
  std::vector<std::string> nodes_;  // Largest subtree first.
};

}  // namespace dsar::merkle

#endif  // DSAR_STORAGE_AUDIT_MERKLE_H_
