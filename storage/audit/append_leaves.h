#ifndef DSAR_STORAGE_AUDIT_APPEND_LEAVES_H_
#define DSAR_STORAGE_AUDIT_APPEND_LEAVES_H_

// Recomputing a Merkle tree from its entries on several threads: what a
// verifier of the whole log (`dsarctl audit verify`, dsar-audit-bench) does
// with each batch of entries it reads. Leaf hashes are independent, and so
// are the roots of aligned perfect subtrees, so each thread hashes whole
// runs of leaves up to their subtree root and only those roots are folded
// in order.

#include <string>

#include "absl/types/span.h"
#include "storage/audit/merkle.h"

namespace dsar::merkle {

// Leaves per run a thread hashes to one subtree root: 2^kLeafRunLevel.
inline constexpr int kLeafRunLevel = 8;

// The machine's hardware threads (at least 1): what AppendLeaves uses when
// asked for 0 threads.
int DefaultHashThreads();

// Appends `entries` to `tree` as leaves: the same tree as
// tree.Append(LeafHash(entry), nullptr) for each entry in order, with the
// hashing spread over up to `threads` threads, the caller's included
// (0: DefaultHashThreads()). Returns how many threads hashed, which is
// fewer than asked when there are fewer aligned runs of 2^kLeafRunLevel
// leaves than threads, or when a thread cannot be started (its share is
// then hashed by the caller).
// When `leaf_hashes` is not null it is resized to 32 * entries.size()
// bytes and receives the leaf hash of entries[i] at [32 i, 32 i + 32).
int AppendLeaves(absl::Span<const std::string> entries, int threads,
                 CompactRange& tree, std::string* leaf_hashes);

}  // namespace dsar::merkle

#endif  // DSAR_STORAGE_AUDIT_APPEND_LEAVES_H_
