#include "gateway/compat/seed_routes.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "gateway/subject_access.h"
#include "model/field_types.h"
#include "model/identity.h"
#include "model/regulation.h"

namespace dsar::gateway::compat {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kMaxEventPages = 20;  // 20 000 events: far above any request.

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Rfc3339(const google::protobuf::Timestamp& time) {
  return TimeUtil::ToString(time);
}

// The seed's job status words: PENDING until the workflow runs (the v1
// status, e.g. VERIFYING, is in the job's "state").
std::string JobStatus(v1::RequestStatus status) {
  switch (status) {
    case v1::RECEIVED:
    case v1::VERIFYING:
      return "PENDING";
    case v1::RUNNING:
      return "RUNNING";
    case v1::COMPLETED:
      return "COMPLETED";
    case v1::FAILED:
      return "FAILED";
    case v1::CANCELLED:
      return "CANCELLED";
    case v1::NEEDS_ATTENTION:
      return "NEEDS_ATTENTION";  // Not done: an operator must act.
    case v1::PAUSED:
      return "PAUSED";
    default:
      return "UNKNOWN";
  }
}

std::string JobAction(v1::RequestType type) {
  if (type == v1::ACCESS) return "export";
  if (type == v1::ERASURE) return "delete";
  return absl::AsciiStrToLower(v1::RequestType_Name(type));
}

bool HasBundle(const v1::Request& request) {
  return request.type() == v1::ACCESS || request.type() == v1::PORTABILITY;
}

bool Downloadable(const v1::Request& request) {
  return HasBundle(request) && request.status() == v1::COMPLETED &&
         !request.bundle().path().empty();
}

// One error entry of seed 003's express-validator answer.
nlohmann::json FieldError(const std::string& path, const nlohmann::json* value,
                          const std::string& message) {
  nlohmann::json error = {{"type", "field"},
                          {"msg", message},
                          {"path", path},
                          {"location", "body"}};
  if (value != nullptr) error["value"] = *value;
  return error;
}

// A claim as text: strings as they are, integers in decimal, else "".
std::string ClaimText(const nlohmann::json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  return "";
}

// A caller whose own token names the subject (the subject signed in) has
// had their identity verified by the identity provider: the request skips
// the one-time-code step, and the audit log records how and by whom.
void MarkVerifiedBySession(const Caller& caller,
                           v1::CreateRequestRequest* request) {
  v1::IdentityVerification* verified = request->mutable_verified();
  verified->set_method("logged_in_session");
  verified->set_evidence_ref(absl::StrCat(
      "jwt:", ClaimText(caller.claims, "iss"), "#", caller.subject));
}

// The canonical form of an email address (the model's normaliser, as dsard
// applies it at intake), or "" when there is none.
std::string CanonicalEmail(const std::string& email) {
  absl::StatusOr<std::string> canonical =
      NormalizeIdentityValue(kEmailKey, email, "");
  return canonical.ok() ? *std::move(canonical) : "";
}

// Whether `caller` may see `request`: operators and services every one, a
// data subject their own (subject_access.h). Another person's request
// answers as an unknown id does.
bool MaySee(const Caller& caller, const v1::Request& request) {
  if (ReachesEveryRequest(caller)) return true;
  ProvenSubject subject = ProvenSubjectOf(caller);
  return !subject.empty() && subject.Owns(request);
}

}  // namespace

nlohmann::json SubmitErrorsForCoordinatorError(const absl::Status& error) {
  // The coordinator names its own fields; point at the form's.
  std::string field;
  std::string reason(error.message());
  if (std::optional<FieldViolation> violation = FieldViolationOf(error)) {
    field = violation->field;
    reason = violation->description;
    if (absl::StartsWith(field, "identities")) field = "email";
    if (field == "type") field = "requestType";
  }
  return {
      {"errors", nlohmann::json::array({FieldError(field, nullptr, reason)})}};
}

SeedRoutes::SeedRoutes(std::shared_ptr<const BackendClient> backend)
    : backend_(std::move(backend)) {
  auto add = [this](Route route, const char* method, const char* path,
                    const char* scope) {
    absl::StatusOr<PathTemplate> tmpl = PathTemplate::Parse(path);
    // The templates are constants of this file.
    if (!tmpl.ok()) std::abort();
    entries_.push_back({route, method, *std::move(tmpl), scope});
  };
  add(kCreateJob, "POST", "/dsar", "dsar.submit");
  add(kGetJob, "GET", "/dsar/{job_id}", "dsar.read");
  add(kJobEvents, "GET", "/dsar/{job_id}/events", "dsar.read");
  add(kDownload, "GET", "/dsar/{job_id}/download", "dsar.read");
  add(kSubmit, "POST", "/api/dsar/submit", "dsar.submit");
}

std::optional<RouteProvider::Match> SeedRoutes::Find(
    const std::string& method, const std::string& path) const {
  for (const Entry& entry : entries_) {
    if (entry.http_method != method) continue;
    std::optional<std::vector<PathBinding>> bindings = entry.path.Match(path);
    if (bindings) {
      Match match;
      match.route = entry.route;
      match.required_scope = entry.required_scope;
      match.bindings = *std::move(bindings);
      match.path_template = entry.path.text();
      return match;
    }
  }
  return std::nullopt;
}

HttpReply SeedRoutes::Serve(const Match& match, const HttpRequest& request,
                            const Caller& caller) const {
  switch (match.route) {
    case kCreateJob:
      return CreateJob(request.body, request.Header("Idempotency-Key"), caller);
    case kGetJob:
      return GetJob(match.bindings[0].value, caller);
    case kJobEvents:
      return JobEvents(match.bindings[0].value, caller);
    case kDownload:
      return Download(match.bindings[0].value, caller);
    case kSubmit:
      return Submit(request.body, request.Header("Idempotency-Key"), caller);
  }
  return ErrorReply(
      absl::InternalError(absl::StrCat("no seed route number ", match.route)));
}

HttpReply SeedRoutes::CreateJob(const std::string& body,
                                const std::string& idempotency_key,
                                const Caller& caller) const {
  nlohmann::json input = nlohmann::json::parse(body, nullptr, false);
  if (input.is_discarded() || !input.is_object()) {
    return ErrorReply(
        absl::InvalidArgumentError("request body is not a valid JSON object"));
  }
  std::string user_id;
  auto user = input.find("user_id");
  if (user != input.end() && user->is_string()) {
    user_id = user->get<std::string>();
  } else if (user != input.end() && user->is_number_integer()) {
    user_id = user->dump();
  } else if (user != input.end() && !user->is_null()) {
    return ErrorReply(Invalid("user_id", "must be a string"));
  }
  if (absl::StripAsciiWhitespace(user_id).empty()) {
    return ErrorReply(Invalid("user_id", "required"));
  }
  v1::CreateRequestRequest request;
  // value("action", "") throws for a non-string action; a throw here ended
  // as a 500 (found by fuzz/seed_routes_fuzzer, corpus
  // create-nested-action).
  auto action_field = input.find("action");
  std::string action = action_field != input.end() && action_field->is_string()
                           ? action_field->get<std::string>()
                           : "";
  if (action == "export") {
    request.set_type(v1::ACCESS);
  } else if (action == "delete") {
    request.set_type(v1::ERASURE);
  } else {
    return ErrorReply(Invalid("action", "must be \"export\" or \"delete\""));
  }
  for (const auto& [key, value] : input.items()) {
    if (key != "user_id" && key != "action") {
      return ErrorReply(Invalid(key, "unknown field"));
    }
  }
  v1::SubjectIdentity* identity = request.add_identities();
  identity->set_type(v1::USER_ID);
  identity->set_value(user_id);
  request.set_idempotency_key(idempotency_key);
  // A data subject's own token (subject_access.h) may only ask about the
  // user_id it carries, and then counts as verified. Operators and services
  // submit for anyone: the coordinator verifies the subject itself.
  if (!ReachesEveryRequest(caller)) {
    if (!ProvenSubjectOf(caller).Matches(*identity)) {
      return ErrorReply(absl::PermissionDeniedError(
          "user_id: a data subject's token may only ask about its own "
          "user_id"));
    }
    MarkVerifiedBySession(caller, &request);
  }

  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::Request created;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->CreateRequest(&context, request, &created);
  if (!status.ok()) {
    absl::Status error = FromGrpcStatus(status);
    // The coordinator names its own fields; point at the seed's.
    std::optional<FieldViolation> violation = FieldViolationOf(error);
    if (violation && absl::StartsWith(violation->field, "identities")) {
      error = Invalid("user_id", violation->description);
    }
    return ErrorReply(error);
  }
  return JsonReply(200, Dump({{"jobId", created.id()}}));
}

absl::StatusOr<v1::Request> SeedRoutes::FetchVisible(
    const std::string& id, const Caller& caller) const {
  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::GetRequestRequest get;
  get.set_id(id);
  v1::Request request;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->GetRequest(&context, get, &request);
  if (!status.ok()) return FromGrpcStatus(status);
  if (!MaySee(caller, request)) return RequestNotFound(id);
  return request;
}

HttpReply SeedRoutes::GetJob(const std::string& id,
                             const Caller& caller) const {
  absl::StatusOr<v1::Request> visible = FetchVisible(id, caller);
  if (!visible.ok()) return ErrorReply(visible.status());
  const v1::Request& request = *visible;
  nlohmann::json job = {{"jobId", request.id()},
                        {"action", JobAction(request.type())},
                        {"status", JobStatus(request.status())},
                        {"state", v1::RequestStatus_Name(request.status())},
                        {"createdAt", Rfc3339(request.created_at())},
                        {"updatedAt", Rfc3339(request.updated_at())}};
  if (request.has_completed_at()) {
    job["completedAt"] = Rfc3339(request.completed_at());
  }
  if (request.has_deadline()) job["deadline"] = Rfc3339(request.deadline());
  if (!request.linked_to().empty()) job["linkedTo"] = request.linked_to();
  if (Downloadable(request)) {
    job["downloadUrl"] = absl::StrCat("/dsar/", request.id(), "/download");
  }
  if (!request.error().empty()) {
    job["error"] = request.error();
    job["cause"] = request.cause();
  }
  nlohmann::json stores = nlohmann::json::array();
  for (const v1::StoreStep& step : request.steps()) {
    stores.push_back({{"store", step.store()},
                      {"step", step.task_state()},
                      {"status", v1::StepStatus_Name(step.status())}});
  }
  job["stores"] = std::move(stores);
  return JsonReply(200, Dump(job));
}

HttpReply SeedRoutes::JobEvents(const std::string& id,
                                const Caller& caller) const {
  std::unique_ptr<v1::DsarService::Stub> stub =
      v1::DsarService::NewStub(backend_->channel());
  if (!ReachesEveryRequest(caller)) {
    absl::StatusOr<v1::Request> visible = FetchVisible(id, caller);
    if (!visible.ok()) return ErrorReply(visible.status());
  }
  nlohmann::json events = nlohmann::json::array();
  v1::ListEventsRequest list;
  list.set_request_id(id);
  list.set_page_size(1000);
  for (int page = 0; page < kMaxEventPages; ++page) {
    grpc::ClientContext context;
    backend_->PrepareContext(&context, caller.subject);
    v1::ListEventsResponse response;
    grpc::Status status = stub->ListEvents(&context, list, &response);
    if (!status.ok()) return ErrorReply(FromGrpcStatus(status));
    for (const v1::Event& event : response.events()) {
      std::string json;
      if (!google::protobuf::util::MessageToJsonString(event, &json).ok()) {
        return ErrorReply(absl::InternalError("cannot print an event"));
      }
      events.push_back(nlohmann::json::parse(json));
    }
    if (response.next_page_token().empty()) break;
    list.set_page_token(response.next_page_token());
  }
  return JsonReply(200, Dump({{"jobId", id}, {"events", std::move(events)}}));
}

HttpReply SeedRoutes::Download(const std::string& id,
                               const Caller& caller) const {
  absl::StatusOr<v1::Request> visible = FetchVisible(id, caller);
  if (!visible.ok()) return ErrorReply(visible.status());
  const v1::Request& request = *visible;
  if (!HasBundle(request)) {
    return ErrorReply(absl::NotFoundError(absl::StrCat(
        "request ", id, " is a ", v1::RequestType_Name(request.type()),
        " request: it has no download")));
  }
  if (!Downloadable(request)) {
    // 409 rather than the 400 of FAILED_PRECONDITION: the same URL will work
    // once the request completes, which is what a client polling it needs
    // to tell apart from a malformed call.
    HttpReply reply = ErrorReply(absl::FailedPreconditionError(
        absl::StrCat("request ", id, " has no bundle yet (status ",
                     v1::RequestStatus_Name(request.status()), ")")));
    reply.status = 409;
    return reply;
  }
  // A fresh signed URL (audited by dsard), issued for the caller: the
  // seed's 302 to its storage URL, here to the gateway's download route.
  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::CreateDownloadUrlRequest create;
  create.set_id(id);
  v1::CreateDownloadUrlResponse url;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->CreateDownloadUrl(&context, create, &url);
  if (!status.ok()) return ErrorReply(FromGrpcStatus(status));
  HttpReply reply;
  reply.status = 302;
  reply.headers.push_back({"Location", url.url()});
  reply.body = Dump({{"downloadUrl", url.url()},
                     {"expiresAt", Rfc3339(url.expires_at())},
                     {"sha256", url.sha256()},
                     {"sizeBytes", url.size_bytes()}});
  return reply;
}

HttpReply SeedRoutes::Submit(const std::string& body,
                             const std::string& idempotency_key,
                             const Caller& caller) const {
  nlohmann::json input = nlohmann::json::parse(body, nullptr, false);
  if (input.is_discarded() || !input.is_object()) {
    nlohmann::json errors = nlohmann::json::array(
        {FieldError("", nullptr, "the body must be a JSON object")});
    return JsonReply(400, Dump({{"errors", errors}}));
  }
  nlohmann::json errors = nlohmann::json::array();
  auto member = [&input](const char* name) -> const nlohmann::json* {
    auto it = input.find(name);
    return it == input.end() ? nullptr : &*it;
  };
  // email: checked with the model's validator, the one dsard applies at
  // intake, so that the answer lists every bad field at once as the seed's
  // does. dsard normalises it (lower case) and has the last word.
  std::string email;
  const nlohmann::json* email_value = member("email");
  if (email_value != nullptr && email_value->is_string()) {
    email = std::string(
        absl::StripAsciiWhitespace(email_value->get<std::string>()));
  }
  if (email.empty() || !ValidateFieldValue(FieldType::kEmail, email, "").ok()) {
    errors.push_back(
        FieldError("email", email_value, "must be a valid email address"));
  }
  // fullName: trimmed, at least 2 characters.
  const nlohmann::json* name_value = member("fullName");
  std::string full_name;
  if (name_value != nullptr && name_value->is_string()) {
    full_name =
        std::string(absl::StripAsciiWhitespace(name_value->get<std::string>()));
  }
  if (full_name.size() < 2) {
    errors.push_back(FieldError("fullName", name_value,
                                "must be at least 2 characters long"));
  }
  // requestType: one of the four the seed accepts.
  const nlohmann::json* type_value = member("requestType");
  std::string type = type_value != nullptr && type_value->is_string()
                         ? type_value->get<std::string>()
                         : "";
  v1::RequestType request_type = v1::REQUEST_TYPE_UNSPECIFIED;
  if (type == "access") request_type = v1::ACCESS;
  if (type == "erasure") request_type = v1::ERASURE;
  if (type == "portability") request_type = v1::PORTABILITY;
  if (type == "rectification") request_type = v1::RECTIFICATION;
  if (request_type == v1::REQUEST_TYPE_UNSPECIFIED) {
    errors.push_back(FieldError(
        "requestType", type_value,
        "must be one of access, erasure, portability, rectification"));
  }
  if (!errors.empty()) return JsonReply(400, Dump({{"errors", errors}}));

  // Identity (seed 003's 403): a data subject signed in with their own
  // account may only ask about their own address, verified by the identity
  // provider (email_verified: true, subject_access.h), and then counts as
  // verified. Operators and services (dsar.admin, dsar.service) submit on
  // someone's behalf; dsard then verifies the subject with a one-time code.
  bool subject_token = !ReachesEveryRequest(caller);
  std::string subject_email = ProvenSubjectOf(caller).email;
  if (subject_token &&
      (subject_email.empty() || subject_email != CanonicalEmail(email))) {
    return JsonReply(
        403, Dump({{"error", "Identity verification required"},
                   {"message",
                    "Please provide additional verification information"}}));
  }

  v1::CreateRequestRequest request;
  request.set_type(request_type);
  request.set_regulation(kRegulationGdpr);
  request.set_idempotency_key(idempotency_key);
  v1::SubjectIdentity* identity = request.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value(email);
  if (subject_token) MarkVerifiedBySession(caller, &request);
  // fullName served the identity check only: it is not stored (Art. 5(1)(c)).
  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::Request created;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->CreateRequest(&context, request, &created);
  if (!status.ok()) {
    absl::Status error = FromGrpcStatus(status);
    if (error.code() == absl::StatusCode::kInvalidArgument) {
      return JsonReply(400, Dump(SubmitErrorsForCoordinatorError(error)));
    }
    return ErrorReply(error);
  }
  // The statutory deadline is dsard's to compute (and to extend); it sets
  // one on every request it creates.
  if (!created.has_deadline()) {
    return ErrorReply(absl::InternalError(
        absl::StrCat("dsard created request ", created.id(),
                     " without a deadline; the gateway does not compute one")));
  }
  absl::Time deadline = absl::FromUnixSeconds(created.deadline().seconds()) +
                        absl::Nanoseconds(created.deadline().nanos());
  return JsonReply(
      202, Dump({{"requestId", created.id()},
                 {"message", "DSAR request received"},
                 {"deadline", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", deadline,
                                               absl::UTCTimeZone())}}));
}

}  // namespace dsar::gateway::compat
