#include "storage/audit/subtree_cache.h"

#include <algorithm>
#include <cstring>

namespace dsar::audit::internal {
namespace {

constexpr size_t kHashSize = 32;
constexpr int kLevels = 64;

}  // namespace

SubtreeCache::SubtreeCache(int lowest_level, size_t max_hashes)
    : max_chunks_(max_hashes / kChunkHashes),
      lowest_level_(std::clamp(lowest_level, 0, kLevels)),
      chunks_(kLevels) {}

bool SubtreeCache::Lookup(int level, uint64_t index, std::string* hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (level < lowest_level_ || level >= kLevels) return false;
  const std::vector<std::unique_ptr<Chunk>>& chunks = chunks_[level];
  const uint64_t chunk = index / kChunkHashes;
  if (chunk >= chunks.size() || chunks[chunk] == nullptr) return false;
  const uint64_t slot = index % kChunkHashes;
  if (!chunks[chunk]->present[slot]) return false;
  hash->assign(&chunks[chunk]->hashes[slot * kHashSize], kHashSize);
  return true;
}

void SubtreeCache::Insert(int level, uint64_t index, std::string_view hash) {
  if (hash.size() != kHashSize) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (level < lowest_level_ || level >= kLevels) return;
  const uint64_t chunk = index / kChunkHashes;
  std::vector<std::unique_ptr<Chunk>>& chunks = chunks_[level];
  if (chunk >= chunks.size() || chunks[chunk] == nullptr) {
    while (chunk_count_ + 1 > max_chunks_ && lowest_level_ <= level) {
      DropLowestLevel();
    }
    if (level < lowest_level_) return;  // This level was dropped too.
    if (chunk >= chunks.size()) chunks.resize(chunk + 1);
    chunks[chunk] = std::make_unique<Chunk>();
    ++chunk_count_;
  }
  const uint64_t slot = index % kChunkHashes;
  std::memcpy(&chunks[chunk]->hashes[slot * kHashSize], hash.data(), kHashSize);
  chunks[chunk]->present[slot] = true;
}

void SubtreeCache::DropLowestLevel() {
  for (const std::unique_ptr<Chunk>& chunk : chunks_[lowest_level_]) {
    if (chunk != nullptr) --chunk_count_;
  }
  chunks_[lowest_level_].clear();
  chunks_[lowest_level_].shrink_to_fit();
  ++lowest_level_;
}

int SubtreeCache::lowest_level() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lowest_level_;
}

size_t SubtreeCache::allocated_hashes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return chunk_count_ * kChunkHashes;
}

}  // namespace dsar::audit::internal
