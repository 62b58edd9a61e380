#include "gateway/compat_routes.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/grpc_status.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "gateway/gdpr_deadline.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
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

// Where a completed request's bundle is fetched. The signed, time-limited
// download URLs come with the delivery work; until then this names the
// resource without serving it.
std::string BundleUrl(const std::string& id) {
  return absl::StrCat("/v1/requests/", id, "/bundle");
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

}  // namespace

bool LooksLikeEmail(const std::string& email) {
  if (email.size() > 254) return false;
  size_t at = email.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == email.size()) {
    return false;
  }
  absl::string_view local(email.data(), at);
  absl::string_view domain(email.data() + at + 1, email.size() - at - 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.' ||
      absl::StrContains(local, "..")) {
    return false;
  }
  for (char c : local) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!(absl::ascii_isalnum(u) || u >= 0x80 ||
          absl::StrContains("!#$%&'*+-/=?^_`{|}~.", c))) {
      return false;
    }
  }
  std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  if (labels.size() < 2) return false;
  for (absl::string_view label : labels) {
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-') {
      return false;
    }
    for (char c : label) {
      unsigned char u = static_cast<unsigned char>(c);
      if (!(absl::ascii_isalnum(u) || c == '-' || u >= 0x80)) return false;
    }
  }
  absl::string_view tld = labels.back();
  if (tld.size() < 2) return false;
  for (char c : tld) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

CompatRoutes::CompatRoutes(const BackendClient* backend) : backend_(backend) {
  auto add = [this](Kind kind, const char* method, const char* path,
                    const char* scope) {
    absl::StatusOr<PathTemplate> tmpl = PathTemplate::Parse(path);
    // The templates are constants of this file.
    if (!tmpl.ok()) std::abort();
    entries_.push_back({kind, method, *std::move(tmpl), scope});
  };
  add(Kind::kCreateJob, "POST", "/dsar", "dsar.submit");
  add(Kind::kGetJob, "GET", "/dsar/{job_id}", "dsar.read");
  add(Kind::kJobEvents, "GET", "/dsar/{job_id}/events", "dsar.read");
  add(Kind::kDownload, "GET", "/dsar/{job_id}/download", "dsar.read");
  add(Kind::kSubmit, "POST", "/api/dsar/submit", "dsar.submit");
}

std::optional<CompatRoutes::Match> CompatRoutes::Find(
    const std::string& http_method, const std::string& path) const {
  for (const Entry& entry : entries_) {
    if (entry.http_method != http_method) continue;
    std::optional<std::vector<PathBinding>> bindings = entry.path.Match(path);
    if (bindings) {
      return Match{entry.kind, entry.required_scope, *std::move(bindings)};
    }
  }
  return std::nullopt;
}

HttpReply CompatRoutes::Serve(const Match& match, const std::string& body,
                              const std::string& idempotency_key,
                              const Caller& caller, absl::Time now) const {
  switch (match.kind) {
    case Kind::kCreateJob:
      return CreateJob(body, idempotency_key, caller);
    case Kind::kGetJob:
      return GetJob(match.bindings[0].value, caller);
    case Kind::kJobEvents:
      return JobEvents(match.bindings[0].value, caller);
    case Kind::kDownload:
      return Download(match.bindings[0].value, caller);
    case Kind::kSubmit:
      return Submit(body, idempotency_key, caller);
  }
  return ErrorReply(absl::InternalError("unhandled compatibility route"));
}

HttpReply CompatRoutes::CreateJob(const std::string& body,
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
  std::string action = input.value("action", "");
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
  // A subject's own token (it carries their user_id) may only ask about
  // them, and then counts as verified. Service and operator tokens carry no
  // user_id: the coordinator verifies the subject itself.
  std::string token_user = ClaimText(caller.claims, "user_id");
  if (!token_user.empty() && !caller.HasScope("dsar.admin")) {
    if (token_user != user_id) {
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
    if (absl::StartsWith(error.message(), "identities")) {
      error = Invalid("user_id",
                      error.message().substr(error.message().find(": ") + 2));
    }
    return ErrorReply(error);
  }
  return JsonReply(200, Dump({{"jobId", created.id()}}));
}

HttpReply CompatRoutes::GetJob(const std::string& id,
                               const Caller& caller) const {
  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::GetRequestRequest get;
  get.set_id(id);
  v1::Request request;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->GetRequest(&context, get, &request);
  if (!status.ok()) return ErrorReply(FromGrpcStatus(status));
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

HttpReply CompatRoutes::JobEvents(const std::string& id,
                                  const Caller& caller) const {
  std::unique_ptr<v1::DsarService::Stub> stub =
      v1::DsarService::NewStub(backend_->channel());
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

HttpReply CompatRoutes::Download(const std::string& id,
                                 const Caller& caller) const {
  grpc::ClientContext context;
  backend_->PrepareContext(&context, caller.subject);
  v1::GetRequestRequest get;
  get.set_id(id);
  v1::Request request;
  grpc::Status status = v1::DsarService::NewStub(backend_->channel())
                            ->GetRequest(&context, get, &request);
  if (!status.ok()) return ErrorReply(FromGrpcStatus(status));
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
  HttpReply reply;
  reply.status = 302;
  reply.headers.push_back({"Location", BundleUrl(id)});
  reply.body = Dump({{"downloadUrl", BundleUrl(id)}});
  return reply;
}

HttpReply CompatRoutes::Submit(const std::string& body,
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
  // email: isEmail, then normalizeEmail (lower case).
  std::string email;
  const nlohmann::json* email_value = member("email");
  if (email_value != nullptr && email_value->is_string()) {
    email = absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(email_value->get<std::string>()));
  }
  if (!LooksLikeEmail(email)) {
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
  // account may only ask about their own, verified address, and then counts
  // as verified. Operators (dsar.admin) and service tokens without an email
  // claim submit on someone's behalf; dsard then verifies the subject with
  // a one-time code.
  const nlohmann::json& claims = caller.claims;
  bool email_verified_false = claims.contains("email_verified") &&
                              claims["email_verified"].is_boolean() &&
                              !claims["email_verified"].get<bool>();
  std::string token_email = absl::AsciiStrToLower(ClaimText(claims, "email"));
  bool subject_token = !token_email.empty() && !caller.HasScope("dsar.admin");
  if (subject_token && (token_email != email || email_verified_false)) {
    return JsonReply(
        403, Dump({{"error", "Identity verification required"},
                   {"message",
                    "Please provide additional verification information"}}));
  }

  v1::CreateRequestRequest request;
  request.set_type(request_type);
  request.set_regulation("GDPR");
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
      // The coordinator names its own fields; point at the form's.
      size_t colon = error.message().find(": ");
      std::string field = colon == absl::string_view::npos
                              ? ""
                              : std::string(error.message().substr(0, colon));
      if (absl::StartsWith(field, "identities")) field = "email";
      if (field == "type") field = "requestType";
      std::string reason(colon == absl::string_view::npos
                             ? error.message()
                             : error.message().substr(colon + 2));
      nlohmann::json errors =
          nlohmann::json::array({FieldError(field, nullptr, reason)});
      return JsonReply(400, Dump({{"errors", errors}}));
    }
    return ErrorReply(error);
  }
  // The coordinator's statutory deadline (end of day in the controller's
  // time zone); one calendar month after receipt when it has none.
  auto to_time = [](const google::protobuf::Timestamp& t) {
    return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  };
  absl::Time deadline =
      created.has_deadline()
          ? to_time(created.deadline())
          : OneCalendarMonthAfter(to_time(created.created_at()));
  return JsonReply(
      202, Dump({{"requestId", created.id()},
                 {"message", "DSAR request received"},
                 {"deadline", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", deadline,
                                               absl::UTCTimeZone())}}));
}

}  // namespace dsar::gateway
