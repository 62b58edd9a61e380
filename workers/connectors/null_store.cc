#include "workers/connectors/null_store.h"

#include <utility>

#include "common/status_macros.h"
#include "workers/connectors/export_writer.h"

namespace dsar {
namespace {

std::vector<std::string> CollectionNames(const StoreSpec& store) {
  std::vector<std::string> names;
  names.reserve(store.collections.size());
  for (const CollectionSpec& collection : store.collections) {
    names.push_back(collection.name);
  }
  return names;
}

}  // namespace

NullStoreConnector::NullStoreConnector(const StoreSpec& store,
                                       const std::atomic<bool>* cancel)
    : store_name_(store.name),
      collection_names_(CollectionNames(store)),
      cancel_(cancel) {}

absl::Status NullStoreConnector::CheckNotCancelled() const {
  if (internal::Cancelled(cancel_)) {
    return internal::CancelledError(store_name_);
  }
  return absl::OkStatus();
}

absl::StatusOr<ConnectorResult> NullStoreConnector::Export(
    const std::vector<Identity>& /*identities*/, ByteSink& sink) {
  RETURN_IF_ERROR(CheckNotCancelled());
  ExportWriter writer(sink, store_name_);
  RETURN_IF_ERROR(writer.Finish());
  return ConnectorResult{};
}

absl::StatusOr<ConnectorResult> NullStoreConnector::Discover(
    const std::vector<Identity>& /*identities*/) {
  RETURN_IF_ERROR(CheckNotCancelled());
  return ConnectorResult{};
}

absl::StatusOr<EraseResult> NullStoreConnector::Erase(
    const std::vector<Identity>& /*identities*/) {
  RETURN_IF_ERROR(CheckNotCancelled());
  EraseResult result;
  for (const std::string& name : collection_names_) {
    CollectionErasure nothing;
    nothing.collection = name;
    result.collections.push_back(std::move(nothing));
  }
  return result;
}

absl::StatusOr<int64_t> NullStoreConnector::Rectify(
    const std::vector<Identity>& /*identities*/,
    const std::vector<FieldCorrection>& /*corrections*/) {
  RETURN_IF_ERROR(CheckNotCancelled());
  return 0;
}

absl::StatusOr<int64_t> NullStoreConnector::SetProcessingFlag(
    const std::vector<Identity>& /*identities*/, const std::string& /*flag*/) {
  RETURN_IF_ERROR(CheckNotCancelled());
  return 0;
}

}  // namespace dsar
