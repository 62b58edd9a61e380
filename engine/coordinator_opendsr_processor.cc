// dsar as an OpenDSR processor on the coordinator's side (docs/opendsr.md,
// "dsar as a processor"): a controller's request becomes an ordinary,
// pre-verified dsar request whose idempotency key is derived from the
// controller and its subject_request_id; its status is read back in
// OpenDSR's terms, and each change of that status queues signed callbacks
// to the controller in the notification outbox.

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/request_validation.h"
#include "model/event_kinds.h"
#include "opendsr/processor_status.h"

namespace dsar {
namespace {

constexpr size_t kMaxControllerIdBytes = 256;
constexpr int kMaxCallbackUrls = 4;
constexpr size_t kMaxCallbackUrlBytes = 2048;

// 8-4-4-4-12 hexadecimal digits (any version: the spec asks for v4, and a
// controller's other UUIDs are just as unique).
bool IsUuid(const std::string& text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !absl::ascii_isxdigit(text[i])) return false;
  }
  return true;
}

absl::Status ValidateRef(const std::string& controller_id,
                         const std::string& subject_request_id) {
  if (controller_id.empty() || controller_id.size() > kMaxControllerIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "controller_id: must be 1 to ", kMaxControllerIdBytes, " bytes"));
  }
  if (!IsUuid(subject_request_id)) {
    return absl::InvalidArgumentError(
        "subject_request_id: must be a UUID "
        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  return absl::OkStatus();
}

// "opendsr:<32 hex digits of SHA-256(controller_id)>:<uuid, lowercase>":
// printable, at most 77 bytes whatever the controller id, and the same for
// every POST of that controller's request.
std::string ProcessorIdempotencyKey(const std::string& controller_id,
                                    const std::string& subject_request_id) {
  return absl::StrCat("opendsr:", Sha256Hex(controller_id).substr(0, 32), ":",
                      absl::AsciiStrToLower(subject_request_id));
}

}  // namespace

absl::StatusOr<v1::ProcessorRequestStatus> Coordinator::CreateProcessorRequest(
    const v1::CreateProcessorRequestRequest& request,
    const std::string& actor) {
  RETURN_IF_ERROR(
      ValidateRef(request.controller_id(), request.subject_request_id()));
  if (request.type() != v1::ACCESS && request.type() != v1::PORTABILITY &&
      request.type() != v1::ERASURE) {
    return absl::InvalidArgumentError(
        "subject_request_type: must be access, portability or erasure");
  }
  if (request.status_callback_urls_size() > kMaxCallbackUrls) {
    return absl::InvalidArgumentError(absl::StrCat(
        "status_callback_urls: at most ", kMaxCallbackUrls, " URLs"));
  }
  for (const std::string& url : request.status_callback_urls()) {
    if (!absl::StartsWith(url, "https://") ||
        url.size() > kMaxCallbackUrlBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "status_callback_urls: each must be an https URL of at most ",
          kMaxCallbackUrlBytes, " bytes"));
    }
  }
  if (request.status_callback_urls_size() > 0 &&
      options_.opendsr_processor_key_pem.empty()) {
    return absl::FailedPreconditionError(
        "status_callback_urls: this dsard cannot sign callbacks (started "
        "without --opendsr_processor_key); poll the status instead");
  }
  v1::CreateRequestRequest create;
  create.set_type(request.type());
  create.set_regulation(request.regulation());
  *create.mutable_identities() = request.identities();
  create.set_idempotency_key(ProcessorIdempotencyKey(
      request.controller_id(), request.subject_request_id()));
  // The controller verified its data subject before asking its processor.
  create.mutable_verified()->set_method("opendsr_controller");
  create.mutable_verified()->set_evidence_ref(absl::StrCat(
      "controller=", request.controller_id(), " subject_request_id=",
      absl::AsciiStrToLower(request.subject_request_id())));
  v1::OpenDsrOrigin origin;
  origin.set_controller_id(request.controller_id());
  origin.set_subject_request_id(
      absl::AsciiStrToLower(request.subject_request_id()));
  *origin.mutable_status_callback_urls() = request.status_callback_urls();
  *origin.mutable_submitted_time() = request.submitted_time();
  bool created = false;
  ASSIGN_OR_RETURN(v1::Request stored,
                   CreateRequestFrom(create, actor, &origin, &created));
  v1::ProcessorRequestStatus status = opendsr::ProcessorStatusOf(stored);
  status.set_created(created);
  return status;
}

absl::StatusOr<v1::ProcessorRequestStatus> Coordinator::GetProcessorRequest(
    const v1::ProcessorRequestRef& ref) const {
  RETURN_IF_ERROR(ValidateRef(ref.controller_id(), ref.subject_request_id()));
  ASSIGN_OR_RETURN(std::optional<std::string> id,
                   store_->GetIdempotencyKey(ProcessorIdempotencyKey(
                       ref.controller_id(), ref.subject_request_id())));
  if (!id) {
    return absl::NotFoundError(absl::StrCat(
        "no request ", absl::AsciiStrToLower(ref.subject_request_id()),
        " from this controller"));
  }
  ASSIGN_OR_RETURN(v1::Request request, GetRequest(*id));
  return opendsr::ProcessorStatusOf(request);
}

absl::StatusOr<v1::ProcessorRequestStatus> Coordinator::CancelProcessorRequest(
    const v1::ProcessorRequestRef& ref, const std::string& actor) {
  ASSIGN_OR_RETURN(v1::ProcessorRequestStatus status, GetProcessorRequest(ref));
  if (status.request_status() == "completed" ||
      status.request_status() == "cancelled") {
    return absl::FailedPreconditionError(
        absl::StrCat("request ", status.subject_request_id(), " is already ",
                     status.request_status()));
  }
  v1::CancelRequestRequest cancel;
  cancel.set_id(status.request_id());
  cancel.set_reason("cancelled by the OpenDSR controller");
  ASSIGN_OR_RETURN(v1::Request cancelled, CancelRequest(cancel, actor));
  return opendsr::ProcessorStatusOf(cancelled);
}

void Coordinator::QueueOpenDsrCallbacks(Txn& txn, const LiveRequest& live,
                                        v1::RequestStatus before) {
  const v1::Request& request = live.record.request();
  if (request.opendsr_origin().status_callback_urls().empty() ||
      opendsr::OpenDsrStatusOf(before) ==
          opendsr::OpenDsrStatusOf(request.status())) {
    return;
  }
  v1::ProcessorRequestStatus status = opendsr::ProcessorStatusOf(request);
  const auto& urls = request.opendsr_origin().status_callback_urls();
  for (int i = 0; i < urls.size(); ++i) {
    internal::Notification notification;
    notification.set_id(absl::StrCat(request.id(), "/",
                                     live.record.next_event_sequence(), "/",
                                     kNotificationOpenDsrCallback, "/", i));
    notification.set_request_id(request.id());
    notification.set_kind(kNotificationOpenDsrCallback);
    notification.set_created_ms(txn.now_ms);
    // The body as the controller receives it: the sink signs these bytes.
    notification.set_payload_json(
        opendsr::CallbackBody(status, urls.Get(i)).dump());
    txn.batch.PutNotification(notification);
    txn.notifications.push_back(std::move(notification));
  }
}

}  // namespace dsar
