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
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"
#include "storage/state_store.h"

namespace dsar {

class AuditLog {
 public:
  struct Options {
    std::string origin;  // Checkpoint origin line, e.g. "dsar.example/audit".
    std::unique_ptr<audit::CheckpointSigner> signer;
    std::string hmac_key;  // Secret for subject identifier hashes.
  };

  // Rebuilds the right edge from the stored checkpoint size. DATA_LOSS when
  // a hash the edge needs is missing.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const StateStore* store,
                                                        Options options);

  // --- Commit loop only (not thread-safe). ---
  // Sets event->log_index, serializes the event deterministically and adds
  // it, its leaf hash and every completed subtree hash to `batch`. Returns
  // the leaf hash (the next event of the request chains to it).
  std::string Append(StateBatch& batch, v1::Event* event);
  // When leaves were appended since the last call, signs a checkpoint of
  // the new size and adds it to `batch`.
  absl::Status SealGroup(StateBatch& batch);

  // HMAC-SHA256(hmac_key, "<key>:<value>") in hex. Thread-safe.
  std::string SubjectHmac(const std::string& key,
                          const std::string& value) const;

  // --- Reads: any thread; they see committed data only. ---
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

 private:
  AuditLog(const StateStore* store, Options options)
      : store_(store), options_(std::move(options)) {}
  merkle::SubtreeHashFn StoredSubtrees() const;
  absl::StatusOr<uint64_t> CommittedSize() const;

  const StateStore* store_;
  Options options_;
  merkle::CompactRange edge_;  // Commit loop only.
  uint64_t sealed_size_ = 0;   // Commit loop only.
};

}  // namespace dsar

#endif  // DSAR_STORAGE_AUDIT_AUDIT_LOG_H_
