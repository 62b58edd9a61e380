#ifndef DSAR_OPENDSR_PROCESSOR_STATUS_H_
#define DSAR_OPENDSR_PROCESSOR_STATUS_H_

// dsar as an OpenDSR processor (docs/opendsr.md, "dsar as a processor"):
// how a dsar request reads as an OpenDSR processor request, and the JSON
// bodies the processor sends. dsard builds the status for its answers and
// callbacks; the gateway prints the bodies it signs.

#include <string>

#include "dsar/v1/opendsr.pb.h"
#include "dsar/v1/requests.pb.h"
#include "nlohmann/json.hpp"

namespace dsar::opendsr {

inline constexpr char kApiVersion[] = "2.0";

// Rfc3339Utc (opendsr/processor.h) of a proto timestamp.
std::string Rfc3339Utc(const google::protobuf::Timestamp& time);

// OpenDSR's status for a dsar status (section 8): RECEIVED and VERIFYING
// are "pending"; RUNNING, PAUSED and NEEDS_ATTENTION "in_progress" (work
// has begun and is not over, whatever holds it up); COMPLETED
// "completed"; CANCELLED and FAILED "cancelled" (the processor will not
// act; for FAILED, ProcessorRequestStatus.reason says why).
std::string OpenDsrStatusOf(v1::RequestStatus status);

// The processor request that `request` is (it has an opendsr_origin).
// results_count is the records of every store step that succeeded, once
// COMPLETED, else -1; has_results when its bundle can be downloaded.
v1::ProcessorRequestStatus ProcessorStatusOf(const v1::Request& request);

// The status body (section 8.3): controller_id, expected_completion_time,
// subject_request_id, request_status, api_version, and results_count once
// known; `reason` when dsar ended the request itself; `results_url` when
// not empty. Times are RFC 3339 in UTC.
nlohmann::json StatusBody(const v1::ProcessorRequestStatus& status,
                          const std::string& results_url = "");

// The callback body (section 8.6): the status body with the
// status_callback_url it is sent to.
nlohmann::json CallbackBody(const v1::ProcessorRequestStatus& status,
                            const std::string& status_callback_url);

}  // namespace dsar::opendsr

#endif  // DSAR_OPENDSR_PROCESSOR_STATUS_H_
