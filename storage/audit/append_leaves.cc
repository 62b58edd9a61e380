#include "storage/audit/append_leaves.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/sha256.h"

namespace dsar::merkle {
namespace {

constexpr uint64_t kRunLeaves = uint64_t{1} << kLeafRunLevel;

// The hashes below give SHA-256 their whole input in one piece: with
// OpenSSL 3 each extra EVP_DigestUpdate costs about as much as a tenth of a
// node hash.

// Writes LeafHash(entry) to `out`; `buffer` is scratch space.
void HashLeaf(const std::string& entry, std::string& buffer, char* out) {
  buffer.assign(1, '\x00');
  buffer.append(entry);
  Sha256Concat({buffer}, reinterpret_cast<unsigned char*>(out));
}

// Writes NodeHash of the two hashes at `pair` to `out` (which may overlap
// `pair`).
void HashNode(const char* pair, char* out) {
  char input[1 + 2 * kHashSize];
  input[0] = '\x01';
  std::memcpy(input + 1, pair, 2 * kHashSize);
  Sha256Concat({std::string_view(input, sizeof(input))},
               reinterpret_cast<unsigned char*>(out));
}

// Hashes the runs [first_run, end_run) of `entries`, the r-th run being
// entries [first + r * kRunLeaves, first + (r + 1) * kRunLeaves), into
// roots[r]; leaf hashes go to `leaf_hashes` (indexed like `entries`) when
// it is not null.
void HashRuns(absl::Span<const std::string> entries, uint64_t first,
              uint64_t first_run, uint64_t end_run, char* leaf_hashes,
              std::vector<std::string>& roots) {
  // The run's leaf hashes, then, in place, each level of its subtree.
  std::vector<char> level(kRunLeaves * kHashSize);
  std::string buffer;
  for (uint64_t run = first_run; run < end_run; ++run) {
    const uint64_t begin = first + run * kRunLeaves;
    for (uint64_t i = 0; i < kRunLeaves; ++i) {
      HashLeaf(entries[begin + i], buffer, &level[i * kHashSize]);
    }
    if (leaf_hashes != nullptr) {
      std::memcpy(leaf_hashes + begin * kHashSize, level.data(), level.size());
    }
    for (uint64_t width = kRunLeaves / 2; width >= 1; width /= 2) {
      for (uint64_t i = 0; i < width; ++i) {
        HashNode(&level[2 * i * kHashSize], &level[i * kHashSize]);
      }
    }
    roots[run].assign(level.data(), kHashSize);
  }
}

}  // namespace

int DefaultHashThreads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int AppendLeaves(absl::Span<const std::string> entries, int threads,
                 CompactRange& tree, std::string* leaf_hashes) {
  if (threads <= 0) threads = DefaultHashThreads();
  const uint64_t n = entries.size();
  char* leaves = nullptr;
  if (leaf_hashes != nullptr) {
    leaf_hashes->resize(n * kHashSize);
    leaves = leaf_hashes->data();
  }
  // Leaves before the first aligned run, the runs, and the leaves after.
  const uint64_t misalignment = tree.size() % kRunLeaves;
  const uint64_t head =
      std::min(n, misalignment == 0 ? 0 : kRunLeaves - misalignment);
  const uint64_t runs = (n - head) / kRunLeaves;
  const uint64_t tail_begin = head + runs * kRunLeaves;

  std::vector<std::string> roots(runs);
  const uint64_t workers =
      std::max<uint64_t>(1, std::min<uint64_t>(threads, runs));
  // Worker w hashes runs [w * runs / workers, (w + 1) * runs / workers);
  // the caller takes worker 0's share and any share a thread could not
  // start for.
  std::vector<std::thread> started;
  std::vector<uint64_t> unstarted;
  for (uint64_t w = 1; w < workers; ++w) {
    try {
      started.emplace_back(HashRuns, entries, head, w * runs / workers,
                           (w + 1) * runs / workers, leaves, std::ref(roots));
    } catch (const std::system_error&) {
      unstarted.push_back(w);
    }
  }
  HashRuns(entries, head, 0, runs / workers, leaves, roots);
  for (uint64_t w : unstarted) {
    HashRuns(entries, head, w * runs / workers, (w + 1) * runs / workers,
             leaves, roots);
  }
  std::string hash(kHashSize, '\0'), buffer;
  auto append_leaf = [&](uint64_t i) {
    HashLeaf(entries[i], buffer, hash.data());
    if (leaves != nullptr)
      std::memcpy(leaves + i * kHashSize, hash.data(), kHashSize);
    tree.Append(hash, nullptr);
  };
  for (uint64_t i = 0; i < head; ++i) append_leaf(i);
  for (std::thread& thread : started) thread.join();
  for (std::string& root : roots) {
    absl::Status appended = tree.AppendSubtree(kLeafRunLevel, std::move(root));
    if (!appended.ok()) {
      // Cannot happen: the head aligned the tree to whole runs.
      std::cerr << "AppendLeaves: " << appended << "\n";
      std::abort();
    }
  }
  for (uint64_t i = tail_begin; i < n; ++i) append_leaf(i);
  return static_cast<int>(workers - unstarted.size());
}

}  // namespace dsar::merkle
