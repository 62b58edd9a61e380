#ifndef DSAR_STORAGE_AUDIT_AUDIT_LOG_H_
#define DSAR_STORAGE_AUDIT_AUDIT_LOG_H_

// The coordinator's audit log: every event becomes a leaf of one RFC 9162
// Merkle tree stored in the state database, in the same WriteBatch as the
// state change that produced it. Perfect-subtree hashes are stored as they
// complete, so appends are O(log n), proofs read O(log n) hashes, and
// start-up rebuilds the right edge from O(log n) reads. After every commit
// group that added leaves, a checkpoint is signed and stored in that group.
// docs/audit-log.md describes the format.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"
#include "storage/audit/subtree_cache.h"
#include "storage/state_store.h"

namespace dsar {

class AuditLog {
 public:
  struct Options {
    // Checkpoint origin line, e.g. "dsar.example/audit". Empty: the origin
    // of the stored checkpoint, or for a new log one unique to the signing
    // key (DerivedOrigin). The signer is named after the origin.
    std::string origin;
    std::unique_ptr<audit::CheckpointSigner> signer;
    std::string hmac_key;  // Secret for subject identifier hashes.
    // A file outside the data directory holding the latest checkpoint this
    // log has handed out (its witness); empty: none. See Open.
    std::string witness_path;
  };

  // Rebuilds the right edge from the stored checkpoint size. DATA_LOSS when
  // a leaf or hash the edge needs is missing, or when the edge does not make
  // the root the stored checkpoint signed. FAILED_PRECONDITION when `origin`
  // differs from the stored checkpoints' origin, and, with a witness, when
  // the stored log is smaller than the witnessed checkpoint ("rollback: ...")
  // or does not extend it ("fork: ...") — an older copy of the database was
  // restored — or the witness was signed by another key. Nothing is signed
  // before these checks. Then the witness is brought up to date.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const StateStore* store,
                                                        Options options);
  // Records the latest committed checkpoint in the witness (if any).
  ~AuditLog();

  // Where dsard keeps the witness when not told: KEYS_DIR/checkpoint.witness
  // when `keys_dir` is set and lies outside `data_dir` (a restored data
  // directory does not bring it back); "" when there is no safe default.
  static std::string DefaultWitnessPath(const std::string& data_dir,
                                        const std::string& keys_dir);

  // "dsar.local/audit/<first 8 bytes of SHA-256(public key), hex>".
  static std::string DerivedOrigin(const audit::CheckpointSigner& signer);

  // --- Commit loop only (not thread-safe). ---
  // Sets event->log_index, serializes the event deterministically and adds
  // it, its leaf hash and every completed subtree hash to `batch`. Returns
  // the leaf hash (the next event of the request chains to it). The batch
  // must then be committed, or the log no longer used (dsard stops when a
  // commit fails): the edge, and the upper-level hashes kept in memory for
  // proofs, already include the event.
  std::string Append(StateBatch& batch, v1::Event* event);
  // When leaves were appended since the last call, signs a checkpoint of
  // the new size and adds it to `batch`.
  absl::Status SealGroup(StateBatch& batch);
  // Leaves appended so far, committed or in the group being built.
  uint64_t AppendedSize() const { return edge_.size(); }

  // HMAC-SHA256(hmac_key, "<key>:<value>") in hex. Thread-safe.
  std::string SubjectHmac(const std::string& key,
                          const std::string& value) const;

  // --- Reads: any thread; they see committed data only. ---
  // With a witness, the checkpoint is recorded there before it is returned,
  // so no checkpoint leaves the process unwitnessed; an error writing the
  // witness is returned instead of the checkpoint.
  absl::StatusOr<v1::GetCheckpointResponse> GetCheckpoint() const;
  absl::StatusOr<v1::GetEntriesResponse> GetEntries(
      const v1::GetEntriesRequest& request) const;
  absl::StatusOr<v1::GetRequestEntriesResponse> GetRequestEntries(
      const v1::GetRequestEntriesRequest& request) const;
  absl::StatusOr<v1::GetInclusionProofResponse> GetInclusionProof(
      const v1::GetInclusionProofRequest& request) const;
  absl::StatusOr<v1::GetConsistencyProofResponse> GetConsistencyProof(
      const v1::GetConsistencyProofRequest& request) const;

  const audit::CheckpointSigner& signer() const { return *options_.signer; }
  const std::string& origin() const { return options_.origin; }

 private:
  AuditLog(const StateStore* store, Options options)
      : store_(store), options_(std::move(options)) {}
  // Subtree hashes one at a time, through FetchSubtrees.
  merkle::SubtreeHashFn StoredSubtrees() const;
  // Runs `compute` (a proof over subtree hashes) twice: first with
  // placeholder hashes, to learn which subtrees it reads (the proofs'
  // recursion depends on leaf ranges, never on hash values); then with
  // those subtrees fetched together (FetchSubtrees).
  template <typename T>
  absl::StatusOr<T> WithFetchedSubtrees(
      const std::function<absl::StatusOr<T>(const merkle::SubtreeHashFn&)>&
          compute) const;
  // Hashes of `nodes` (level, index), in order: levels >= kStoredLevel
  // from upper_levels_, or else from the store (a node upper_levels_ should
  // hold but does not is read with the kScanHashes around it); lower ones
  // hashed from their leaves (HashFromLeaves).
  absl::StatusOr<std::vector<std::string>> FetchSubtrees(
      const std::vector<std::pair<int, uint64_t>>& nodes) const;
  // Sets (*hashes)[i] for each i in `low`, the indexes of nodes of level <
  // kStoredLevel, by hashing their leaves, read together (one MultiGet).
  absl::Status HashFromLeaves(
      const std::vector<std::pair<int, uint64_t>>& nodes,
      const std::vector<size_t>& low, std::vector<std::string>* hashes) const;
  absl::StatusOr<uint64_t> CommittedSize() const;
  // Open's checks against the witness file.
  absl::Status CheckWitness() const;
  // Writes `note` (of `size` entries) to the witness when it is newer than
  // what the witness holds. No-op without a witness.
  absl::Status RecordWitness(uint64_t size, const std::string& note) const;

  const StateStore* store_;
  Options options_;
  merkle::CompactRange edge_;  // Commit loop only.
  uint64_t sealed_size_ = 0;   // Commit loop only.
  // Subtree hashes are stored from level kStoredLevel up: one per 8
  // leaves. Below it they are hashed from the leaves when a proof or the
  // right edge needs them (at most 2^kStoredLevel - 1 = 15 leaves per
  // proof, read in one MultiGet), so an event writes its leaf and, once
  // in 8 events, a hash, instead of about three keys. Logs written before
  // this kept every level; their lower hashes are left unread.
  static constexpr int kStoredLevel = 4;
  // Subtrees of level >= kCachedLevel are also kept in memory: one per 32
  // leaves, so a proof reads from the store only 15 leaves and the hashes
  // of levels 4 and 5. A log of 10M leaves keeps ~312,000 hashes (10 MB).
  // Filled by Append as subtrees complete and, for those completed before
  // this process started, kScanHashes at a time as proofs ask for them
  // (start-up reads none). At most kMaxCachedHashes (32 MB); past ~32M
  // leaves the lowest level is dropped, then the next (SubtreeCache), and
  // those are read from the store.
  static constexpr int kCachedLevel = 6;
  static_assert(kCachedLevel >= kStoredLevel, "only stored levels are kept");
  static constexpr size_t kMaxCachedHashes = size_t{1} << 20;
  static constexpr uint64_t kScanHashes = 256;
  mutable audit::internal::SubtreeCache upper_levels_{kCachedLevel,
                                                      kMaxCachedHashes};
  mutable std::mutex witness_mu_;
  mutable uint64_t witnessed_size_ = 0;  // Guarded by witness_mu_.
  mutable bool witnessed_ = false;       // Guarded by witness_mu_.
  // Set once CheckWitness passed; until then nothing is recorded.
  mutable bool witness_checked_ = false;  // Guarded by witness_mu_.
};

}  // namespace dsar

#endif  // DSAR_STORAGE_AUDIT_AUDIT_LOG_H_
