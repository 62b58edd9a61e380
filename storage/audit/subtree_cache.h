#ifndef DSAR_STORAGE_AUDIT_SUBTREE_CACHE_H_
#define DSAR_STORAGE_AUDIT_SUBTREE_CACHE_H_

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace dsar::audit::internal {

// AuditLog's in-memory copy of the upper levels of its tree: hashes of
// complete perfect subtrees of level >= lowest_level(), so that a proof
// reads only the levels below from the store. A complete subtree's hash
// never changes, so a held hash is never stale.
//
// Hashes are kept in chunks of kChunkHashes consecutive indexes of one
// level (32 bytes each), allocated as first written to; at most
// `max_hashes` hashes' worth of chunks exist. When a new chunk would pass
// that, the lowest level kept is dropped and no longer kept: the levels
// above it need half as many chunks. Thread-safe.
class SubtreeCache {
 public:
  static constexpr uint64_t kChunkHashes = 1024;

  SubtreeCache(int lowest_level, size_t max_hashes);
  SubtreeCache(const SubtreeCache&) = delete;
  SubtreeCache& operator=(const SubtreeCache&) = delete;

  // True, with the hash in *hash, when the subtree (level, index) is held;
  // false (and *hash unchanged) when it is not.
  bool Lookup(int level, uint64_t index, std::string* hash) const;
  // Holds `hash` (32 bytes) as the hash of the complete subtree (level,
  // index). Ignored below lowest_level(), and when no room is left even
  // after dropping lower levels.
  void Insert(int level, uint64_t index, std::string_view hash);

  // Levels below this one are never held.
  int lowest_level() const;
  // Hashes' worth of memory allocated (each 32 bytes plus one bit).
  size_t allocated_hashes() const;

 private:
  struct Chunk {
    std::array<char, kChunkHashes * 32> hashes;
    std::bitset<kChunkHashes> present;
  };
  // REQUIRES: mu_ held.
  void DropLowestLevel();

  mutable std::mutex mu_;
  const size_t max_chunks_;
  int lowest_level_;        // Guarded by mu_.
  size_t chunk_count_ = 0;  // Guarded by mu_.
  // chunks_[level][index / kChunkHashes]; null: nothing held there.
  std::vector<std::vector<std::unique_ptr<Chunk>>> chunks_;  // Guarded by mu_.
};

}  // namespace dsar::audit::internal

#endif  // DSAR_STORAGE_AUDIT_SUBTREE_CACHE_H_
