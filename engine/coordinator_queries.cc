// Read-only queries: a request, lists, events. They read RocksDB directly,
// never through the commit loop. Part of Coordinator; see
// engine/coordinator.h.

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/request_validation.h"

namespace dsar {
namespace {

v1::StepStatus StepStatusOf(internal::ItemPhase phase) {
  switch (phase) {
    case internal::ITEM_WAITING:
      return v1::WAITING;
    case internal::ITEM_READY:
      return v1::READY;
    case internal::ITEM_LEASED:
      return v1::LEASED;
    case internal::ITEM_RETRY_WAIT:
      return v1::RETRY_WAIT;
    case internal::ITEM_SUCCEEDED:
      return v1::SUCCEEDED;
    case internal::ITEM_FAILED:
      return v1::STEP_FAILED;
    case internal::ITEM_SKIPPED:
      return v1::SKIPPED;
    case internal::ITEM_BLOCKED:
      return v1::BLOCKED;
    default:
      return v1::STEP_STATUS_UNSPECIFIED;
  }
}

}  // namespace

v1::Request ToPublicRequest(const internal::RequestRecord& record) {
  v1::Request request = record.request();
  if (request.status() == v1::VERIFYING && record.timer_due_ms() != 0) {
    SetTimestampMillis(record.timer_due_ms(),
                       request.mutable_verification_expires_at());
  }
  request.clear_steps();
  for (int m = 0; m < record.maps_size(); ++m) {
    const internal::MapRun& run = record.maps(m);
    // A later run of the same Map state (a retry) replaces this one here;
    // the events keep the history.
    bool superseded =
        std::any_of(record.maps().begin() + m + 1, record.maps().end(),
                    [&](const internal::MapRun& later) {
                      return later.state() == run.state();
                    });
    if (superseded) continue;
    for (const internal::MapItem& item : run.items()) {
      v1::StoreStep* step = request.add_steps();
      step->set_store(item.store());
      step->set_map_state(run.state());
      step->set_task_state(item.state());
      step->set_status(StepStatusOf(item.phase()));
      step->set_attempts(item.attempt());
      step->set_error(item.error());
      step->set_cause(item.cause());
      step->set_record_count(item.record_count());
      step->set_artifact_sha256(item.artifact_sha256());
      step->set_worker_id(item.worker_id());
      step->set_alert(item.alert());
      *step->mutable_erasures() = item.erasures();
    }
  }
  return request;
}

absl::StatusOr<v1::Request> Coordinator::GetRequest(
    const std::string& id) const {
  RETURN_IF_ERROR(ValidateRequestId("id", id));
  ASSIGN_OR_RETURN(internal::RequestRecord record, store_->GetRequest(id));
  return ToPublicRequest(record);
}

absl::StatusOr<v1::ListRequestsResponse> Coordinator::ListRequests(
    const v1::ListRequestsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  if (!v1::RequestStatus_IsValid(request.status())) {
    return absl::InvalidArgumentError("status: unknown status");
  }
  if (!v1::RequestType_IsValid(request.type())) {
    return absl::InvalidArgumentError("type: unknown request type");
  }
  RequestFilter filter;
  filter.status = request.status();
  filter.type = request.type();
  if (request.has_created_after()) {
    if (request.created_after().seconds() < 0) {
      return absl::InvalidArgumentError(
          "created_after: must not be before 1970");
    }
    filter.created_after_ms =
        static_cast<uint64_t>(request.created_after().seconds()) * 1000 +
        static_cast<uint64_t>(request.created_after().nanos() / 1000000);
  }
  std::vector<internal::RequestRecord> records;
  v1::ListRequestsResponse response;
  if (request.has_due_before()) {
    // Deadlines matter only for unfinished requests: scan the live set, not
    // the archive. Earliest deadline first; one page (no token).
    if (!request.page_token().empty()) {
      return absl::InvalidArgumentError("page_token: not used with due_before");
    }
    int64_t due_before = request.due_before().seconds() * 1000 +
                         request.due_before().nanos() / 1000000;
    auto millis = [](const google::protobuf::Timestamp& t) {
      return t.seconds() * 1000 + t.nanos() / 1000000;
    };
    RETURN_IF_ERROR(
        store_->ForEachLiveRequest([&](internal::RequestRecord record) {
          const v1::Request& r = record.request();
          bool matches = millis(r.deadline()) < due_before &&
                         (filter.type == v1::REQUEST_TYPE_UNSPECIFIED ||
                          r.type() == filter.type) &&
                         (filter.status == v1::REQUEST_STATUS_UNSPECIFIED ||
                          r.status() == filter.status) &&
                         static_cast<uint64_t>(millis(r.created_at())) >=
                             filter.created_after_ms;
          if (matches) records.push_back(std::move(record));
          return absl::OkStatus();
        }));
    std::sort(records.begin(), records.end(),
              [&](const auto& a, const auto& b) {
                return millis(a.request().deadline()) <
                       millis(b.request().deadline());
              });
    size_t limit = request.page_size() == 0
                       ? 50
                       : static_cast<size_t>(request.page_size());
    if (records.size() > limit) records.resize(limit);
    for (const internal::RequestRecord& record : records) {
      *response.add_requests() = ToPublicRequest(record);
    }
    return response;
  }
  RETURN_IF_ERROR(store_->ListRequests(
      filter, request.page_size() == 0 ? 50 : request.page_size(),
      request.page_token(), &records, response.mutable_next_page_token()));
  for (const internal::RequestRecord& record : records) {
    *response.add_requests() = ToPublicRequest(record);
  }
  return response;
}

absl::StatusOr<v1::ListEventsResponse> Coordinator::ListEvents(
    const v1::ListEventsRequest& request) const {
  if (request.request_id().empty()) {
    return absl::InvalidArgumentError("request_id: required");
  }
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  uint64_t after = 0;
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &after)) {
    return absl::InvalidArgumentError(
        "page_token: not a token from this listing");
  }
  // Existence check, so an unknown id is NOT_FOUND rather than empty; the
  // record also holds the events' notes.
  ASSIGN_OR_RETURN(internal::RequestRecord record,
                   store_->GetRequest(request.request_id()));
  std::vector<v1::Event> events;
  bool more = false;
  RETURN_IF_ERROR(store_->ListEvents(
      request.request_id(), after,
      request.page_size() == 0 ? 100 : request.page_size(), &events, &more));
  v1::ListEventsResponse response;
  for (v1::Event& event : events) {
    auto note = record.notes().find(event.sequence());
    if (note != record.notes().end()) event.set_note(note->second);
    *response.add_events() = std::move(event);
  }
  if (more && !events.empty()) {
    response.set_next_page_token(
        absl::StrCat(response.events().rbegin()->sequence()));
  }
  return response;
}

}  // namespace dsar
