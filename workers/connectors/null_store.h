#ifndef DSAR_WORKERS_CONNECTORS_NULL_STORE_H_
#define DSAR_WORKERS_CONNECTORS_NULL_STORE_H_

// Connector for a null store (inventory kind "null", docs/inventory.md):
// a store that holds nothing. Every operation succeeds at once, finds no
// record and changes nothing: Discover and Export report 0 records and no
// identity (Export writes the document with an empty "records" list), Erase
// reports 0 rows for the store's one collection, Rectify and
// SetProcessingFlag report 0 records. These are true answers for a store
// with no data, so a request's outcome never claims more than was done.
//
// It stands in for a real store where the engine alone is measured
// (docs/BENCHMARKS.md: a task that costs nearly nothing), and `inventory
// check` warns about each null store so one is never configured unnoticed.
// Cancellation is checked once, before an operation starts.

#include <atomic>
#include <string>
#include <vector>

#include "inventory/inventory.h"
#include "workers/connectors/connector.h"

namespace dsar {

class NullStoreConnector : public Connector {
 public:
  // `store` must be a null store (IsNullStore). `cancel` may be null; when
  // given it must outlive the connector.
  NullStoreConnector(const StoreSpec& store, const std::atomic<bool>* cancel);

  absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<EraseResult> Erase(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<int64_t> Rectify(
      const std::vector<Identity>& identities,
      const std::vector<FieldCorrection>& corrections) override;
  absl::StatusOr<int64_t> SetProcessingFlag(
      const std::vector<Identity>& identities,
      const std::string& flag) override;

 private:
  // OK, or CANCELLED once the cancel flag is set.
  absl::Status CheckNotCancelled() const;

  const std::string store_name_;
  const std::vector<std::string> collection_names_;
  const std::atomic<bool>* const cancel_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_NULL_STORE_H_
