// OpenDSR status callbacks on the coordinator's side (docs/opendsr.md): a
// verified callback, forwarded by the gateway, is matched to the task whose
// processor request it names, recorded on that request's audit log, and
// turned into a hint that the next heartbeat of the task carries, so the
// worker polls the processor at once instead of at its next interval.

#include <algorithm>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "model/event_kinds.h"
#include "model/task_operation.h"
#include "opendsr/processor.h"

namespace dsar {
namespace {

// A status is a short lowercase word (section 8, or a processor's own such
// as "denied"); anything else is refused before it reaches the audit log.
bool IsStatusWord(const std::string& status) {
  return !status.empty() && status.size() <= 32 &&
         std::all_of(status.begin(), status.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

}  // namespace

absl::StatusOr<v1::RecordProcessorStatusResponse>
Coordinator::RecordProcessorStatus(
    const v1::RecordProcessorStatusRequest& request) {
  if (request.processor_domain().empty() ||
      request.subject_request_id().empty()) {
    return absl::InvalidArgumentError(
        "processor_domain and subject_request_id are required");
  }
  if (!IsStatusWord(request.request_status())) {
    return absl::InvalidArgumentError(
        "request_status: must be a lowercase word such as \"completed\"");
  }
  return RunInLoop<v1::RecordProcessorStatusResponse>(
      [this,
       request](Txn& txn) -> absl::StatusOr<v1::RecordProcessorStatusResponse> {
        // The id is a hash of (request, store, operation): it is found by
        // computing it for the live tasks at stores of that processor.
        for (auto& [id, live] : live_) {
          const internal::RequestRecord& record = live.record;
          if (record.maps_size() == 0) continue;
          const int map = record.maps_size() - 1;
          const State* map_state =
              live.definition->root().Find(record.maps(map).state());
          if (map_state == nullptr || map_state->iterator == nullptr) continue;
          for (int i = 0; i < record.maps(map).items_size(); ++i) {
            const internal::MapItem& item = record.maps(map).items(i);
            const StoreSpec* spec = inventory().Find(item.store());
            if (spec == nullptr || spec->kind != "opendsr" ||
                !absl::EqualsIgnoreCase(spec->opendsr.processor_domain,
                                        request.processor_domain())) {
              continue;
            }
            const State* task_state = map_state->iterator->Find(item.state());
            if (task_state == nullptr) continue;
            std::optional<TaskOperation> operation =
                TaskOperationOfResource(task_state->resource);
            if (!operation.has_value() ||
                opendsr::SubjectRequestId(id, item.store(), *operation) !=
                    request.subject_request_id()) {
              continue;
            }
            EventDraft event;
            event.kind = kEventProcessorStatus;
            event.state = record.maps(map).state();
            event.store = item.store();
            event.attempt = item.attempt();
            event.detail = absl::StrCat(
                "status=", request.request_status(),
                " subject_request_id=", request.subject_request_id());
            if (request.results_count() >= 0) {
              absl::StrAppend(&event.detail,
                              " results_count=", request.results_count());
            }
            AppendEvents(txn, live, {event});
            {
              std::lock_guard<std::mutex> lock(hints_mu_);
              processor_status_hints_.insert(
                  coordinator_internal::TaskId(id, map, i));
            }
            v1::RecordProcessorStatusResponse response;
            response.set_request_id(id);
            response.set_store(item.store());
            return response;
          }
        }
        return absl::NotFoundError(absl::StrCat(
            "no task in progress has processor request ",
            request.subject_request_id(), " at ", request.processor_domain()));
      });
}

bool Coordinator::TakeProcessorStatusHint(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(hints_mu_);
  return processor_status_hints_.erase(task_id) > 0;
}

}  // namespace dsar
