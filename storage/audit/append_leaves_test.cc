#include "storage/audit/append_leaves.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "storage/audit/merkle.h"

namespace dsar::merkle {
namespace {

std::vector<std::string> Entries(uint64_t count) {
  std::vector<std::string> entries;
  for (uint64_t i = 0; i < count; ++i) {
    // Lengths vary across SHA-256 block boundaries.
    entries.push_back(std::string(i % 150, static_cast<char>('a' + i % 26)) +
                      absl::StrCat(i));
  }
  return entries;
}

constexpr uint64_t kRun = uint64_t{1} << kLeafRunLevel;

TEST(AppendLeavesTest, SameTreeAndLeafHashesAsAppendingOneByOne) {
  const std::vector<std::string> entries = Entries(5 * kRun + 40);
  // Starting sizes aligned and not; batch lengths shorter than a run,
  // exactly runs, and runs with leftovers on both sides.
  for (uint64_t start : {uint64_t{0}, uint64_t{1}, kRun - 1, kRun, kRun + 37}) {
    for (uint64_t count :
         {uint64_t{0}, uint64_t{1}, kRun - 1, kRun, 2 * kRun + 3, 3 * kRun}) {
      for (int threads : {1, 2, 3, 0}) {
        SCOPED_TRACE(absl::StrCat("start ", start, ", count ", count,
                                  ", threads ", threads));
        CompactRange expected;
        for (uint64_t i = 0; i < start + count; ++i) {
          expected.Append(LeafHash(entries[i]), nullptr);
        }
        CompactRange tree;
        for (uint64_t i = 0; i < start; ++i) {
          tree.Append(LeafHash(entries[i]), nullptr);
        }
        std::string leaf_hashes = "not resized";
        int used =
            AppendLeaves(absl::MakeConstSpan(entries).subspan(start, count),
                         threads, tree, &leaf_hashes);
        EXPECT_GE(used, 1);
        EXPECT_LE(used, threads == 0 ? DefaultHashThreads() : threads);
        EXPECT_EQ(tree.size(), start + count);
        EXPECT_EQ(tree.nodes(), expected.nodes());
        EXPECT_EQ(tree.RootHash(), expected.RootHash());
        ASSERT_EQ(leaf_hashes.size(), count * kHashSize);
        for (uint64_t i = 0; i < count; ++i) {
          ASSERT_EQ(leaf_hashes.substr(i * kHashSize, kHashSize),
                    LeafHash(entries[start + i]))
              << "leaf " << i;
        }
        // Without leaf hashes asked for, the same tree.
        CompactRange again;
        for (uint64_t i = 0; i < start; ++i) {
          again.Append(LeafHash(entries[i]), nullptr);
        }
        AppendLeaves(absl::MakeConstSpan(entries).subspan(start, count),
                     threads, again, nullptr);
        EXPECT_EQ(again.nodes(), expected.nodes());
      }
    }
  }
}

TEST(AppendLeavesTest, UsesTheThreadsAskedForWhenThereIsWorkForThem) {
  const std::vector<std::string> entries = Entries(4 * kRun);
  CompactRange tree;
  EXPECT_EQ(AppendLeaves(entries, 3, tree, nullptr), 3);
  CompactRange small;
  // One run: one thread, however many are asked for.
  EXPECT_EQ(AppendLeaves(absl::MakeConstSpan(entries).subspan(0, kRun), 4,
                         small, nullptr),
            1);
}

TEST(AppendLeavesTest, ChangedEntryChangesTheRoot) {
  std::vector<std::string> entries = Entries(3 * kRun + 5);
  CompactRange original;
  AppendLeaves(entries, 2, original, nullptr);
  entries[2 * kRun + 17][0] ^= 1;
  CompactRange altered;
  AppendLeaves(entries, 2, altered, nullptr);
  EXPECT_NE(original.RootHash(), altered.RootHash());
}

}  // namespace
}  // namespace dsar::merkle
