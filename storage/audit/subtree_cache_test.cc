#include "storage/audit/subtree_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace dsar::audit::internal {
namespace {

std::string Hash(char c) { return std::string(32, c); }

constexpr uint64_t kChunk = SubtreeCache::kChunkHashes;

TEST(SubtreeCacheTest, HoldsWhatWasInsertedFromItsLowestLevelUp) {
  SubtreeCache cache(6, 16 * kChunk);
  std::string hash = "unchanged";
  EXPECT_FALSE(cache.Lookup(6, 0, &hash));
  EXPECT_EQ(hash, "unchanged");
  cache.Insert(6, 0, Hash('a'));
  cache.Insert(6, kChunk + 5, Hash('b'));
  cache.Insert(40, 3, Hash('c'));
  cache.Insert(5, 0, Hash('d'));       // Below the lowest level: ignored.
  cache.Insert(7, 0, "not 32 bytes");  // Not a hash: ignored.
  EXPECT_TRUE(cache.Lookup(6, 0, &hash));
  EXPECT_EQ(hash, Hash('a'));
  EXPECT_TRUE(cache.Lookup(6, kChunk + 5, &hash));
  EXPECT_EQ(hash, Hash('b'));
  EXPECT_TRUE(cache.Lookup(40, 3, &hash));
  EXPECT_EQ(hash, Hash('c'));
  EXPECT_FALSE(cache.Lookup(6, 1, &hash));
  EXPECT_FALSE(cache.Lookup(5, 0, &hash));
  EXPECT_FALSE(cache.Lookup(7, 0, &hash));
  EXPECT_FALSE(cache.Lookup(64, 0, &hash));
  EXPECT_EQ(cache.allocated_hashes(), 3 * kChunk);
}

TEST(SubtreeCacheTest, DropsItsLowestLevelRatherThanGrowPastItsBound) {
  SubtreeCache cache(6, 4 * kChunk);
  // Level 6 takes three chunks, level 7 one: full.
  for (uint64_t index = 0; index < 3 * kChunk; ++index) {
    cache.Insert(6, index, Hash('6'));
  }
  cache.Insert(7, 0, Hash('7'));
  EXPECT_EQ(cache.allocated_hashes(), 4 * kChunk);
  EXPECT_EQ(cache.lowest_level(), 6);
  // A fifth chunk: level 6 goes, level 7 stays and grows.
  cache.Insert(7, kChunk, Hash('8'));
  EXPECT_EQ(cache.lowest_level(), 7);
  EXPECT_EQ(cache.allocated_hashes(), 2 * kChunk);
  std::string hash;
  EXPECT_FALSE(cache.Lookup(6, 0, &hash));
  EXPECT_TRUE(cache.Lookup(7, 0, &hash));
  EXPECT_EQ(hash, Hash('7'));
  EXPECT_TRUE(cache.Lookup(7, kChunk, &hash));
  cache.Insert(6, 0, Hash('6'));  // Level 6 is no longer kept.
  EXPECT_FALSE(cache.Lookup(6, 0, &hash));
  // A level that does not fit alone is dropped as well.
  SubtreeCache tiny(6, kChunk - 1);
  tiny.Insert(6, 0, Hash('a'));
  EXPECT_FALSE(tiny.Lookup(6, 0, &hash));
  EXPECT_EQ(tiny.allocated_hashes(), 0u);
}

}  // namespace
}  // namespace dsar::audit::internal
