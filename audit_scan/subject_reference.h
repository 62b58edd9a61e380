#ifndef DSAR_AUDIT_SCAN_SUBJECT_REFERENCE_H_
#define DSAR_AUDIT_SCAN_SUBJECT_REFERENCE_H_

// The opaque subject reference of an audit finding: whose record it is,
// without saying who. HMAC-SHA256 under a key only dsar holds, so that the
// reference cannot be reversed or recomputed from a guessed value without
// the key, yet one subject gets one reference in every store and every run.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "inventory/inventory.h"
#include "workers/connectors/record_scan.h"

namespace dsar {

class SubjectReferencer {
 public:
  // `key`: at least 16 bytes (INVALID_ARGUMENT otherwise, without quoting
  // it). The caller keeps it secret; reports carry only its digests.
  static absl::StatusOr<std::unique_ptr<SubjectReferencer>> Create(
      std::string key);

  // "sref:" and 32 lowercase hex digits (128 bits of the HMAC) of the
  // record's subject: its user_id identity field if the collection has one
  // and the record holds it, else the first other identity field the
  // record holds (in identity key order), each in canonical form
  // (model/identity.h) and prefixed with its key; a record holding none is
  // referenced by store, collection and record key instead.
  std::string Reference(const StoreSpec& store,
                        const CollectionSpec& collection,
                        const ScannedRecord& record) const;

 private:
  explicit SubjectReferencer(std::string key) : key_(std::move(key)) {}
  std::string Digest(const std::string& message) const;

  const std::string key_;
};

}  // namespace dsar

#endif  // DSAR_AUDIT_SCAN_SUBJECT_REFERENCE_H_
