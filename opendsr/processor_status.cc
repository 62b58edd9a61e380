#include "opendsr/processor_status.h"

#include "absl/time/time.h"
#include "opendsr/processor.h"

namespace dsar::opendsr {

std::string Rfc3339Utc(const google::protobuf::Timestamp& time) {
  return Rfc3339Utc(absl::FromUnixSeconds(time.seconds()));
}

std::string OpenDsrStatusOf(v1::RequestStatus status) {
  switch (status) {
    case v1::RECEIVED:
    case v1::VERIFYING:
      return "pending";
    case v1::COMPLETED:
      return "completed";
    case v1::CANCELLED:
    case v1::FAILED:
      return "cancelled";
    default:
      return "in_progress";
  }
}

v1::ProcessorRequestStatus ProcessorStatusOf(const v1::Request& request) {
  v1::ProcessorRequestStatus status;
  status.set_controller_id(request.opendsr_origin().controller_id());
  status.set_subject_request_id(request.opendsr_origin().subject_request_id());
  status.set_request_status(OpenDsrStatusOf(request.status()));
  *status.mutable_expected_completion_time() = request.deadline();
  *status.mutable_received_time() = request.created_at();
  status.set_request_id(request.id());
  int64_t results = -1;
  if (request.status() == v1::COMPLETED) {
    results = 0;
    for (const v1::StoreStep& step : request.steps()) {
      if (step.status() == v1::SUCCEEDED) results += step.record_count();
    }
  }
  status.set_results_count(results);
  if (request.status() == v1::FAILED) {
    // Connector causes name stores and errors, never identities (the
    // connector contract); an operator's cancellation reason is not sent,
    // since it may quote what someone typed.
    std::string reason = request.error();
    if (!request.cause().empty()) reason += ": " + request.cause();
    if (reason.size() > 300) {
      // Cut at a character boundary: the body must stay valid UTF-8.
      size_t end = 300;
      while (end > 0 &&
             (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80)
        --end;
      reason.resize(end);
    }
    status.set_reason(reason);
  }
  status.set_has_results(request.status() == v1::COMPLETED &&
                         !request.bundle().path().empty() &&
                         !request.bundle().has_purged_at());
  return status;
}

nlohmann::json StatusBody(const v1::ProcessorRequestStatus& status,
                          const std::string& results_url) {
  nlohmann::json body = {
      {"controller_id", status.controller_id()},
      {"expected_completion_time",
       Rfc3339Utc(status.expected_completion_time())},
      {"subject_request_id", status.subject_request_id()},
      {"request_status", status.request_status()},
      {"api_version", kApiVersion},
  };
  if (status.results_count() >= 0) {
    body["results_count"] = status.results_count();
  }
  if (!status.reason().empty()) body["reason"] = status.reason();
  if (!results_url.empty()) body["results_url"] = results_url;
  return body;
}

nlohmann::json CallbackBody(const v1::ProcessorRequestStatus& status,
                            const std::string& status_callback_url) {
  nlohmann::json body = StatusBody(status);
  body["status_callback_url"] = status_callback_url;
  return body;
}

}  // namespace dsar::opendsr
