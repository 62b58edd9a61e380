#include "gateway/opendsr/processor_routes.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dsar/v1/opendsr.pb.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/error_response.h"
#include "nlohmann/json.hpp"
#include "opendsr/processor.h"
#include "opendsr/processor_status.h"
#include "opendsr/signature.h"

namespace dsar::gateway::opendsr {
namespace {

using nlohmann::json;

constexpr char kDiscoveryPath[] = "/opendsr/v1/discovery";
constexpr char kCertificatePath[] = "/opendsr/v1/processor-certificate.pem";
constexpr char kRequestsPath[] = "/opendsr/v1/requests";
constexpr char kRequestPrefix[] = "/opendsr/v1/requests/";

enum Route { kDiscovery, kCertificate, kCreate, kStatus, kCancel };

constexpr char kCreateMethod[] =
    "/dsar.v1.OpenDsrProcessorService/CreateProcessorRequest";
constexpr char kGetMethod[] =
    "/dsar.v1.OpenDsrProcessorService/GetProcessorRequest";
constexpr char kCancelMethod[] =
    "/dsar.v1.OpenDsrProcessorService/CancelProcessorRequest";
constexpr char kDownloadUrlMethod[] = "/dsar.v1.DsarService/CreateDownloadUrl";

absl::Status FieldError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// The dsar identity an OpenDSR identity is: email -> EMAIL,
// controller_customer_id -> USER_ID (the controller's id for its customer
// is what the processor's stores know the person by), any other type ->
// CUSTOM of that name (dsard then refuses it unless a store reaches it).
// Only the raw format: dsar looks identities up, it cannot reverse a hash.
absl::StatusOr<v1::SubjectIdentity> IdentityOf(const json& identity,
                                               size_t index) {
  const std::string where = absl::StrCat("subject_identities[", index, "]");
  if (!identity.is_object()) return FieldError(where, "must be an object");
  for (const char* key :
       {"identity_type", "identity_value", "identity_format"}) {
    if (!identity.contains(key) || !identity[key].is_string() ||
        identity[key].get<std::string>().empty()) {
      return FieldError(absl::StrCat(where, ".", key),
                        "required, a non-empty string");
    }
  }
  const std::string type = identity["identity_type"].get<std::string>();
  if (identity["identity_format"].get<std::string>() != "raw") {
    return FieldError(absl::StrCat(where, ".identity_format"),
                      "only \"raw\" is supported by this processor");
  }
  v1::SubjectIdentity out;
  if (type == "email") {
    out.set_type(v1::EMAIL);
  } else if (type == "controller_customer_id") {
    out.set_type(v1::USER_ID);
  } else {
    out.set_type(v1::CUSTOM);
    out.set_custom_type(type);
  }
  out.set_value(identity["identity_value"].get<std::string>());
  return out;
}

// What the POST body asks for, checked field by field.
absl::StatusOr<v1::CreateProcessorRequestRequest> ParseCreate(
    const std::string& body, const std::vector<std::string>& callback_hosts) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  v1::CreateProcessorRequestRequest request;
  auto text = [&](const char* key) -> absl::StatusOr<std::string> {
    if (!parsed.contains(key) || !parsed[key].is_string()) {
      return FieldError(key, "required, a string");
    }
    return parsed[key].get<std::string>();
  };
  absl::StatusOr<std::string> id = text("subject_request_id");
  if (!id.ok()) return id.status();
  request.set_subject_request_id(*id);
  absl::StatusOr<std::string> type = text("subject_request_type");
  if (!type.ok()) return type.status();
  if (*type == "access") {
    request.set_type(v1::ACCESS);
  } else if (*type == "portability") {
    request.set_type(v1::PORTABILITY);
  } else if (*type == "erasure") {
    request.set_type(v1::ERASURE);
  } else {
    return FieldError("subject_request_type",
                      "must be access, portability or erasure");
  }
  absl::StatusOr<std::string> regulation = text("regulation");
  if (!regulation.ok()) return regulation.status();
  if (*regulation != "gdpr" && *regulation != "ccpa") {
    return FieldError("regulation", "must be \"gdpr\" or \"ccpa\"");
  }
  request.set_regulation(absl::AsciiStrToUpper(*regulation));
  absl::StatusOr<std::string> submitted = text("submitted_time");
  if (!submitted.ok()) return submitted.status();
  absl::Time submitted_time;
  std::string parse_error;
  if (!absl::ParseTime(absl::RFC3339_full, *submitted, &submitted_time,
                       &parse_error)) {
    return FieldError("submitted_time", "must be an RFC 3339 time");
  }
  request.mutable_submitted_time()->set_seconds(
      absl::ToUnixSeconds(submitted_time));
  if (parsed.contains("api_version") &&
      (!parsed["api_version"].is_string() ||
       !absl::StartsWith(parsed["api_version"].get<std::string>(), "2."))) {
    return FieldError("api_version", "this processor speaks OpenDSR 2.x");
  }
  if (!parsed.contains("subject_identities") ||
      !parsed["subject_identities"].is_array() ||
      parsed["subject_identities"].empty()) {
    return FieldError("subject_identities",
                      "required, a non-empty array (identities in extensions "
                      "are not read by this processor)");
  }
  for (size_t i = 0; i < parsed["subject_identities"].size(); ++i) {
    absl::StatusOr<v1::SubjectIdentity> identity =
        IdentityOf(parsed["subject_identities"][i], i);
    if (!identity.ok()) return identity.status();
    *request.add_identities() = *std::move(identity);
  }
  if (parsed.contains("status_callback_urls")) {
    const json& urls = parsed["status_callback_urls"];
    if (!urls.is_array()) {
      return FieldError("status_callback_urls", "must be an array of URLs");
    }
    for (size_t i = 0; i < urls.size(); ++i) {
      const std::string where = absl::StrCat("status_callback_urls[", i, "]");
      if (!urls[i].is_string()) return FieldError(where, "must be a string");
      const std::string url = urls[i].get<std::string>();
      absl::StatusOr<dsar::opendsr::HttpsUrl> parts =
          dsar::opendsr::ParseHttpsUrl(url);
      if (!parts.ok()) return FieldError(where, parts.status().message());
      bool allowed = callback_hosts.empty();
      for (const std::string& host : callback_hosts) {
        allowed = allowed || absl::EqualsIgnoreCase(host, parts->host);
      }
      if (!allowed) {
        return FieldError(where,
                          "its host is not one this processor calls back");
      }
      request.add_status_callback_urls(url);
    }
  }
  return request;
}

}  // namespace

ProcessorRoutes::ProcessorRoutes(ProcessorOptions options, Backend backend)
    : options_(std::move(options)), backend_(std::move(backend)) {}

std::optional<RouteProvider::Match> ProcessorRoutes::Find(
    const std::string& method, const std::string& path) const {
  Match match;
  if (method == "GET" && path == kDiscoveryPath) {
    match.route = kDiscovery;
    match.authenticates_itself = true;  // Public: nothing but what we offer.
    match.path_template = kDiscoveryPath;
    return match;
  }
  if (method == "GET" && path == kCertificatePath) {
    match.route = kCertificate;
    match.authenticates_itself = true;
    match.path_template = kCertificatePath;
    return match;
  }
  match.required_scope = kControllerScope;
  if (method == "POST" && path == kRequestsPath) {
    match.route = kCreate;
    match.path_template = kRequestsPath;
    return match;
  }
  if (!absl::StartsWith(path, kRequestPrefix)) return std::nullopt;
  const std::string id = path.substr(sizeof(kRequestPrefix) - 1);
  if (id.empty() || absl::StrContains(id, "/")) return std::nullopt;
  if (method != "GET" && method != "DELETE") return std::nullopt;
  match.route = method == "GET" ? kStatus : kCancel;
  match.path_template = "/opendsr/v1/requests/{subject_request_id}";
  match.bindings.push_back({"subject_request_id", id});
  return match;
}

HttpReply ProcessorRoutes::Serve(const Match& match, const HttpRequest& request,
                                 const Caller& caller) const {
  switch (match.route) {
    case kDiscovery:
      return Discovery();
    case kCertificate: {
      HttpReply reply;
      reply.status = 200;
      reply.body = options_.cert_pem;
      reply.content_type = "application/x-pem-file";
      return reply;
    }
    case kCreate:
      return Create(request, caller);
    case kStatus:
      return Status(match.bindings.at(0).value, caller);
    default:
      return Cancel(match.bindings.at(0).value, caller);
  }
}

HttpReply ProcessorRoutes::Discovery() const {
  json body = {
      {"api_version", dsar::opendsr::kApiVersion},
      {"supported_identities",
       json::array({{{"identity_type", "email"}, {"identity_format", "raw"}},
                    {{"identity_type", "controller_customer_id"},
                     {"identity_format", "raw"}}})},
      {"supported_subject_request_types",
       json::array({"access", "portability", "erasure"})},
      {"processor_certificate",
       absl::StrCat(options_.public_url, kCertificatePath)},
  };
  return Signed(200, body.dump());
}

HttpReply ProcessorRoutes::Create(const HttpRequest& request,
                                  const Caller& caller) const {
  absl::StatusOr<v1::CreateProcessorRequestRequest> create =
      ParseCreate(request.body, options_.callback_hosts);
  if (!create.ok()) return Error(create.status());
  create->set_controller_id(caller.subject);
  absl::StatusOr<std::string> answer =
      backend_(kCreateMethod, create->SerializeAsString(), caller.subject);
  v1::ProcessorRequestStatus status;
  if (answer.ok() && !status.ParseFromString(*answer)) {
    answer = absl::InternalError("dsard's answer could not be read");
  }
  if (!answer.ok()) return Error(answer.status());
  json body = {
      {"controller_id", status.controller_id()},
      {"expected_completion_time",
       dsar::opendsr::Rfc3339Utc(status.expected_completion_time())},
      {"received_time", dsar::opendsr::Rfc3339Utc(status.received_time())},
      // Section 7.3: the whole request body, so the controller can check
      // what the processor received.
      {"encoded_request", absl::Base64Escape(request.body)},
      {"subject_request_id", status.subject_request_id()},
  };
  // A repeated POST of the same request is answered as the first was.
  return Signed(201, body.dump());
}

absl::StatusOr<v1::ProcessorRequestStatus> ProcessorRoutes::AskAbout(
    const char* method, const std::string& id, const Caller& caller) const {
  v1::ProcessorRequestRef ref;
  ref.set_controller_id(caller.subject);
  ref.set_subject_request_id(id);
  absl::StatusOr<std::string> answer =
      backend_(method, ref.SerializeAsString(), caller.subject);
  if (!answer.ok()) return answer.status();
  v1::ProcessorRequestStatus status;
  if (!status.ParseFromString(*answer)) {
    return absl::InternalError("dsard's answer could not be read");
  }
  return status;
}

HttpReply ProcessorRoutes::Status(const std::string& id,
                                  const Caller& caller) const {
  absl::StatusOr<v1::ProcessorRequestStatus> asked =
      AskAbout(kGetMethod, id, caller);
  if (!asked.ok()) return Error(asked.status());
  const v1::ProcessorRequestStatus& status = *asked;
  std::string results_url;
  if (status.has_results()) {
    // A fresh signed URL for the bundle, issued to the controller (and
    // audited as such) on each status read after completion.
    v1::CreateDownloadUrlRequest url_request;
    url_request.set_id(status.request_id());
    absl::StatusOr<std::string> url_answer = backend_(
        kDownloadUrlMethod, url_request.SerializeAsString(), caller.subject);
    v1::CreateDownloadUrlResponse url;
    if (url_answer.ok() && url.ParseFromString(*url_answer)) {
      results_url = absl::StrCat(options_.public_url, url.url());
    }
  }
  return Signed(200, dsar::opendsr::StatusBody(status, results_url).dump());
}

HttpReply ProcessorRoutes::Cancel(const std::string& id,
                                  const Caller& caller) const {
  absl::StatusOr<v1::ProcessorRequestStatus> asked =
      AskAbout(kCancelMethod, id, caller);
  if (!asked.ok()) return Error(asked.status());
  const v1::ProcessorRequestStatus& status = *asked;
  json body = {
      {"controller_id", status.controller_id()},
      {"subject_request_id", status.subject_request_id()},
      {"received_time", dsar::opendsr::Rfc3339Utc(absl::Now())},
      {"api_version", dsar::opendsr::kApiVersion},
  };
  return Signed(202, body.dump());
}

HttpReply ProcessorRoutes::Signed(int status, std::string body) const {
  HttpReply reply = JsonReply(status, std::move(body));
  absl::StatusOr<std::string> signature =
      dsar::opendsr::SignBody(reply.body, options_.key_pem);
  if (!signature.ok()) {
    // The key was checked at start-up; an answer that cannot be signed is
    // not sent as if it were trustworthy.
    return JsonReply(
        500,
        json{{"error",
              {{"code", 500}, {"message", "the answer could not be signed"}}}}
            .dump());
  }
  reply.headers.emplace_back(dsar::opendsr::kDomainHeader, options_.domain);
  reply.headers.emplace_back(dsar::opendsr::kSignatureHeader, *signature);
  return reply;
}

HttpReply ProcessorRoutes::Error(const absl::Status& error) const {
  int status = HttpStatusForCode(error.code());
  // dsard's FAILED_PRECONDITION (cancel after the end, callbacks without a
  // key) is the spec's 400: the request cannot be honoured as sent.
  if (error.code() == absl::StatusCode::kFailedPrecondition) status = 400;
  const std::string reason = error.code() == absl::StatusCode::kInvalidArgument
                                 ? "InvalidArgument"
                                 : absl::StatusCodeToString(error.code());
  json body = {
      {"error",
       {{"code", status},
        {"message", std::string(error.message())},
        {"errors",
         json::array({{{"domain", "OpenDSR"},
                       {"reason", reason},
                       {"message", std::string(error.message())}}})}}}};
  return Signed(status, body.dump());
}

}  // namespace dsar::gateway::opendsr
