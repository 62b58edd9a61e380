#include "workers/connectors/opendsr.h"

#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "model/connector_errors.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/export_writer.h"

namespace dsar {
namespace {

using nlohmann::json;

// A service's free text in a cause is cut to this length.
constexpr size_t kMaxReasonBytes = 300;
// Consecutive failed status polls tolerated before the task fails (and is
// retried by the workflow, re-attaching).
constexpr int kMaxFailedPolls = 3;

std::string Truncated(std::string text) {
  if (text.size() > kMaxReasonBytes) {
    text.resize(kMaxReasonBytes);
    text += "...";
  }
  return text;
}

// The service's words from an OpenDSR error object (section 7.6), or from
// a "denied" status's reason.
std::string ReasonOf(const json& body) {
  std::vector<std::string> parts;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& error = body["error"];
    if (error.contains("message") && error["message"].is_string()) {
      parts.push_back(error["message"].get<std::string>());
    }
    if (error.contains("errors") && error["errors"].is_array()) {
      for (const json& detail : error["errors"]) {
        if (detail.is_object() && detail.contains("reason") &&
            detail["reason"].is_string()) {
          parts.push_back(
              absl::StrCat("reason: ", detail["reason"].get<std::string>()));
        }
      }
    }
  }
  if (body.is_object() && body.contains("reason") &&
      body["reason"].is_string()) {
    parts.push_back(body["reason"].get<std::string>());
  }
  if (parts.empty()) return "no reason given";
  return Truncated(absl::StrJoin(parts, "; "));
}

std::string OpenDsrType(const OpenDsrTask& task) {
  switch (task.operation) {
    case TaskOperation::kExport:
      return task.portability ? "portability" : "access";
    case TaskOperation::kErase:
      return "erasure";
    case TaskOperation::kRectify:
      return "rectification";
    case TaskOperation::kRestrict:
      return "restriction";
    case TaskOperation::kObject:
      return "objection";
    case TaskOperation::kDiscover:
      return task.request_right;
    case TaskOperation::kScan:
      return "";  // Never asked: an audit scan reaches only our own stores.
  }
  return "";
}

}  // namespace

OpenDsrConnector::OpenDsrConnector(StoreSpec store,
                                   const std::atomic<bool>* cancel)
    : store_(std::move(store)), cancel_(cancel) {}

absl::StatusOr<std::unique_ptr<OpenDsrConnector>> OpenDsrConnector::Create(
    const StoreSpec& store, const std::atomic<bool>* cancel) {
  if (store.kind != "opendsr" || store.collections.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store ", store.name, ": not an opendsr store with one collection"));
  }
  if (!absl::StartsWith(store.opendsr.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("store ", store.name, ": opendsr.url is not https"));
  }
  return std::unique_ptr<OpenDsrConnector>(new OpenDsrConnector(store, cancel));
}

absl::StatusOr<OpenDsrConnector::Answer> OpenDsrConnector::Send(
    const std::string& method, const std::string& url,
    const std::string& body) {
  absl::StatusOr<Answer> answer =
      opendsr::SendHttps(store_.opendsr, method, url, body);
  if (!answer.ok()) {
    absl::Status status(
        answer.status().code(),
        absl::StrCat("store ", store_.name, ": ", answer.status().message()));
    // A URL the service gave that is not https is not trusted.
    return absl::IsInvalidArgument(status)
               ? WithErrorName(status, kErrorUnverified)
               : status;
  }
  return answer;
}

absl::StatusOr<OpenDsrConnector::Answer> OpenDsrConnector::SendVerified(
    const Discovery& discovery, const std::string& method,
    const std::string& url, const std::string& body) {
  ASSIGN_OR_RETURN(Answer answer, Send(method, url, body));
  const std::string& domain = answer.domain;
  const std::string& signature = answer.signature;
  // Section 8.3: the domain header names the certificate's domain, which
  // must be the one this store trusts.
  if (!absl::EqualsIgnoreCase(domain, store_.opendsr.processor_domain)) {
    return WithErrorName(absl::UnauthenticatedError(absl::StrCat(
                             "store ", store_.name, ": ", method,
                             " answer names processor "
                             "domain \"",
                             Truncated(domain), "\", not \"",
                             store_.opendsr.processor_domain, "\"")),
                         kErrorUnverified);
  }
  absl::Status verified =
      discovery.certificate.CheckSignature(answer.body, signature);
  if (!verified.ok()) {
    // The certificate may have been rotated: the next task fetches it anew
    // (security guidelines 2.v).
    ForgetDiscovery();
    return WithErrorName(absl::UnauthenticatedError(absl::StrCat(
                             "store ", store_.name, ": ", method,
                             " answer refused: ", verified.message())),
                         kErrorUnverified);
  }
  return answer;
}

void OpenDsrConnector::ForgetDiscovery() {
  std::lock_guard<std::mutex> lock(mu_);
  discovery_.reset();
}

absl::StatusOr<OpenDsrConnector::Discovery> OpenDsrConnector::GetDiscovery() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (discovery_.has_value()) return *discovery_;
  }
  absl::StatusOr<Discovery> discovery = opendsr::FetchDiscovery(store_.opendsr);
  if (!discovery.ok()) {
    absl::Status status(discovery.status().code(),
                        absl::StrCat("store ", store_.name, ": discovery: ",
                                     discovery.status().message()));
    if (absl::IsUnauthenticated(status)) {
      return WithErrorName(status, kErrorUnverified);
    }
    if (absl::IsFailedPrecondition(status)) {
      return WithErrorName(status, kErrorUnsupported);
    }
    return status;
  }
  std::lock_guard<std::mutex> lock(mu_);
  discovery_ = *discovery;
  return *discovery;
}

absl::Status OpenDsrConnector::Denied(const std::string& what) const {
  return WithErrorName(absl::FailedPreconditionError(absl::StrCat(
                           "service ", store_.name, " (",
                           store_.opendsr.processor_domain, ") ", what)),
                       kErrorDenied);
}

bool OpenDsrConnector::WaitPollInterval(const std::atomic<bool>* abandon,
                                        std::atomic<bool>* wake) const {
  // The connector's flags are plain atomics (connector.h), so the wait
  // looks at them in short slices.
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(store_.opendsr.poll_interval_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (internal::Cancelled(cancel_) || internal::Cancelled(abandon)) {
      return false;
    }
    if (wake != nullptr && wake->exchange(false)) return true;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        std::chrono::milliseconds(20),
        until - std::chrono::steady_clock::now()));
  }
  return !internal::Cancelled(cancel_) && !internal::Cancelled(abandon);
}

absl::StatusOr<ConnectorResult> OpenDsrConnector::Run(
    const OpenDsrTask& task, const std::atomic<bool>* abandon, ByteSink* sink,
    std::atomic<bool>* wake) {
  if (internal::Cancelled(cancel_) || internal::Cancelled(abandon)) {
    return internal::CancelledError(store_.name);
  }
  ASSIGN_OR_RETURN(Discovery discovery, GetDiscovery());
  const std::string type = OpenDsrType(task);
  if (discovery.request_types.count(type) == 0) {
    std::string offered = absl::StrJoin(discovery.request_types, ", ");
    return WithErrorName(
        absl::FailedPreconditionError(absl::StrCat(
            "service ", store_.name, " does not offer \"", type,
            "\" requests (its discovery lists: ",
            offered.empty() ? "none" : offered,
            type == "rectification" || type == "restriction" ||
                    type == "objection"
                ? "; OpenDSR 2.0 defines only access, portability and erasure"
                : "",
            ")")),
        kErrorUnsupported);
  }
  // Identities the service accepts, mapped to OpenDSR identity types.
  const CollectionSpec& collection = store_.collections.front();
  json identities = json::array();
  std::set<std::string> given_keys;
  for (const Identity& identity : task.identities) {
    given_keys.insert(identity.key);
    auto mapped = collection.identity_fields.find(identity.key);
    if (mapped == collection.identity_fields.end()) continue;
    const std::string& identity_type = mapped->second;
    if (discovery.identities.count({identity_type, "raw"}) > 0) {
      identities.push_back({{"identity_type", identity_type},
                            {"identity_value", identity.value},
                            {"identity_format", "raw"}});
    } else if (discovery.identities.count({identity_type, "sha256"}) > 0) {
      identities.push_back({{"identity_type", identity_type},
                            {"identity_value", Sha256Hex(identity.value)},
                            {"identity_format", "sha256"}});
    }
  }
  if (identities.empty()) {
    std::vector<std::string> offered;
    for (const auto& [identity_type, format] : discovery.identities) {
      offered.push_back(absl::StrCat(identity_type, "/", format));
    }
    return WithErrorName(
        absl::FailedPreconditionError(absl::StrCat(
            "service ", store_.name,
            " accepts none of the subject's identities (given: ",
            absl::StrJoin(given_keys, ", "), "; mapped in the inventory: ",
            absl::StrJoin(collection.identity_fields, ", ",
                          absl::PairFormatter(" -> ")),
            "; the service takes: ", absl::StrJoin(offered, ", "), ")")),
        kErrorUnsupported);
  }
  if (task.operation == TaskOperation::kDiscover) {
    // See the header: OpenDSR has nothing to discover with.
    return ConnectorResult{};
  }

  const std::string id =
      SubjectRequestId(task.request_id, store_.name, task.operation);
  const std::string request_url =
      absl::StrCat(store_.opendsr.url, "/requests/", id);
  json request = {{"subject_request_id", id},
                  {"subject_request_type", type},
                  {"submitted_time", opendsr::Rfc3339Utc(task.submitted)},
                  {"regulation", absl::AsciiStrToLower(task.regulation)},
                  {"subject_identities", identities},
                  {"api_version", "2.0"}};
  if (!store_.opendsr.status_callback_url.empty()) {
    request["status_callback_urls"] =
        json::array({store_.opendsr.status_callback_url});
  }
  if (task.operation == TaskOperation::kRectify) {
    json corrections = json::array();
    for (const FieldCorrection& correction : task.corrections) {
      corrections.push_back({{"collection", correction.collection},
                             {"field", correction.field},
                             {"value", correction.value}});
    }
    request["extensions"] = {
        {store_.opendsr.processor_domain, {{"corrections", corrections}}}};
  }
  ASSIGN_OR_RETURN(
      Answer created,
      SendVerified(discovery, "POST", store_.opendsr.url + "/requests",
                   request.dump()));
  // 201: made now (or again, by a processor that treats the repeated id as
  // the same request); 409: made by an earlier attempt of this task.
  if (created.status == 400 || created.status == 403 || created.status == 422) {
    json body = json::parse(created.body, nullptr, false);
    return Denied(
        absl::StrCat("refused the ", type, " request: ", ReasonOf(body)));
  }
  if (created.status != 201 && created.status != 200 && created.status != 409) {
    return absl::UnavailableError(absl::StrCat(
        "store ", store_.name, ": POST /requests answered ", created.status));
  }

  int failed_polls = 0;
  std::string last_status = "pending";
  json status;
  while (true) {
    if (internal::Cancelled(abandon) || internal::Cancelled(cancel_)) {
      if (internal::Cancelled(abandon) && last_status == "pending") {
        // Best effort: the spec lets a controller cancel a pending request.
        (void)SendVerified(discovery, "DELETE", request_url, "");
      }
      return internal::CancelledError(store_.name);
    }
    absl::StatusOr<Answer> polled =
        SendVerified(discovery, "GET", request_url, "");
    if (!polled.ok()) {
      if (!absl::IsUnavailable(polled.status()) ||
          ++failed_polls >= kMaxFailedPolls) {
        return polled.status();
      }
    } else if (polled->status == 404) {
      return absl::UnavailableError(absl::StrCat(
          "store ", store_.name, ": the service does not know request ", id,
          " it acknowledged (lost?); retrying makes it again"));
    } else if (polled->status != 200) {
      return absl::UnavailableError(
          absl::StrCat("store ", store_.name, ": GET /requests/{id} answered ",
                       polled->status));
    } else {
      failed_polls = 0;
      status = json::parse(polled->body, nullptr, false);
      if (!status.is_object() || !status.contains("request_status") ||
          !status["request_status"].is_string()) {
        return absl::UnavailableError(absl::StrCat(
            "store ", store_.name, ": status answer without request_status"));
      }
      last_status = status["request_status"].get<std::string>();
      if (last_status == "completed") break;
      if (last_status == "cancelled") {
        return Denied(absl::StrCat("cancelled the ", type,
                                   " request: ", ReasonOf(status)));
      }
      if (last_status == "denied") {
        return Denied(
            absl::StrCat("denied the ", type, " request: ", ReasonOf(status)));
      }
    }
    if (!WaitPollInterval(abandon, wake))
      continue;  // The loop's top handles it.
  }

  ConnectorResult result;
  if (status.contains("results_count") &&
      status["results_count"].is_number_integer()) {
    result.record_count = status["results_count"].get<int64_t>();
  }
  if (task.operation != TaskOperation::kExport) return result;
  if (sink == nullptr) {
    return absl::InternalError("OpenDsrConnector::Run: export needs a sink");
  }
  ExportWriter writer(*sink, store_.name);
  if (status.contains("results_url") && status["results_url"].is_string()) {
    // The result format is outside the spec (section 1): JSON is taken as
    // records (an array, one record per element, or one object); anything
    // else is kept as one record's text. A signature, when the answer has
    // one, must hold.
    ASSIGN_OR_RETURN(Answer results,
                     Send("GET", status["results_url"].get<std::string>(), ""));
    const std::string& signature = results.signature;
    if (results.status != 200) {
      return absl::UnavailableError(absl::StrCat(
          "store ", store_.name, ": results_url answered ", results.status));
    }
    if (!signature.empty()) {
      absl::Status verified =
          discovery.certificate.CheckSignature(results.body, signature);
      if (!verified.ok()) {
        return WithErrorName(absl::UnauthenticatedError(absl::StrCat(
                                 "store ", store_.name,
                                 ": results refused: ", verified.message())),
                             kErrorUnverified);
      }
    }
    nlohmann::ordered_json records =
        nlohmann::ordered_json::parse(results.body, nullptr, false);
    if (records.is_array()) {
      for (const auto& record : records) {
        RETURN_IF_ERROR(writer.AddRecord(
            collection.name, record.is_object()
                                 ? record
                                 : nlohmann::ordered_json{{"value", record}}));
      }
    } else if (records.is_object()) {
      RETURN_IF_ERROR(writer.AddRecord(collection.name, records));
    } else {
      RETURN_IF_ERROR(writer.AddRecord(
          collection.name, nlohmann::ordered_json{{"results", results.body}}));
    }
  }
  RETURN_IF_ERROR(writer.Finish());
  if (result.record_count == 0) result.record_count = writer.record_count();
  return result;
}

namespace {

absl::Status NeedsTask(const std::string& store) {
  return absl::FailedPreconditionError(
      absl::StrCat("store ", store,
                   ": an OpenDSR service is asked per task "
                   "(OpenDsrConnector::Run), not through Connector"));
}

}  // namespace

absl::StatusOr<ConnectorResult> OpenDsrConnector::Export(
    const std::vector<Identity>&, ByteSink&) {
  return NeedsTask(store_.name);
}
absl::StatusOr<ConnectorResult> OpenDsrConnector::Discover(
    const std::vector<Identity>&) {
  return NeedsTask(store_.name);
}
absl::StatusOr<EraseResult> OpenDsrConnector::Erase(
    const std::vector<Identity>&) {
  return NeedsTask(store_.name);
}
absl::StatusOr<int64_t> OpenDsrConnector::Rectify(
    const std::vector<Identity>&, const std::vector<FieldCorrection>&) {
  return NeedsTask(store_.name);
}
absl::StatusOr<int64_t> OpenDsrConnector::SetProcessingFlag(
    const std::vector<Identity>&, const std::string&) {
  return NeedsTask(store_.name);
}

}  // namespace dsar
