#include "gateway/opendsr/callback_route.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "opendsr/processor.h"

namespace dsar::gateway::opendsr {
namespace {

using nlohmann::json;

HttpReply Refused(int status, const std::string& message) {
  json body = {{"error", {{"code", status}, {"message", message}}}};
  return JsonReply(status, body.dump());
}

}  // namespace

CallbackRoute::CallbackRoute(std::shared_ptr<const Inventory> inventory,
                             Forward forward)
    : inventory_(std::move(inventory)), forward_(std::move(forward)) {}

std::optional<RouteProvider::Match> CallbackRoute::Find(
    const std::string& method, const std::string& path) const {
  if (method != "POST" || path != kCallbackPath) return std::nullopt;
  Match match;
  match.route = 0;
  match.authenticates_itself = true;  // By the processor's signature.
  match.path_template = kCallbackPath;
  return match;
}

absl::StatusOr<dsar::opendsr::ProcessorCertificate>
CallbackRoute::CertificateFor(const StoreSpec& store, bool refresh) const {
  const std::string domain =
      absl::AsciiStrToLower(store.opendsr.processor_domain);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto cached = certificates_.find(domain);
    bool recent = fetched_at_.count(domain) > 0 &&
                  absl::Now() - fetched_at_[domain] < absl::Minutes(1);
    if (cached != certificates_.end() && (!refresh || recent)) {
      return cached->second;
    }
  }
  absl::StatusOr<dsar::opendsr::Discovery> discovery =
      dsar::opendsr::FetchDiscovery(store.opendsr);
  if (!discovery.ok()) return discovery.status();
  std::lock_guard<std::mutex> lock(mu_);
  certificates_.insert_or_assign(domain, discovery->certificate);
  fetched_at_[domain] = absl::Now();
  return discovery->certificate;
}

HttpReply CallbackRoute::Serve(const Match&, const HttpRequest& request,
                               const Caller&) const {
  // 1. The processor's domain must be one the inventory trusts.
  const std::string domain = request.Header(dsar::opendsr::kDomainHeader);
  const StoreSpec* store = nullptr;
  for (const StoreSpec& candidate : inventory_->stores()) {
    if (candidate.kind == "opendsr" &&
        absl::EqualsIgnoreCase(candidate.opendsr.processor_domain, domain)) {
      store = &candidate;
      break;
    }
  }
  if (domain.empty() || store == nullptr) {
    return Refused(401,
                   "X-OpenDSR-Processor-Domain is missing or not a processor "
                   "this controller works with");
  }
  // 2. Its certificate, then 3. the signature over the raw body.
  absl::StatusOr<dsar::opendsr::ProcessorCertificate> certificate =
      CertificateFor(*store, /*refresh=*/false);
  if (absl::IsUnavailable(certificate.status())) {
    return Refused(503, "the processor's discovery cannot be reached now");
  }
  if (!certificate.ok()) {
    return Refused(401, absl::StrCat("processor certificate refused: ",
                                     certificate.status().message()));
  }
  const std::string signature = request.Header(dsar::opendsr::kSignatureHeader);
  absl::Status verified = certificate->CheckSignature(request.body, signature);
  if (!verified.ok()) {
    absl::StatusOr<dsar::opendsr::ProcessorCertificate> fresh =
        CertificateFor(*store, /*refresh=*/true);
    if (fresh.ok()) verified = fresh->CheckSignature(request.body, signature);
  }
  if (!verified.ok()) {
    return Refused(400, std::string(verified.message()));
  }
  // 4. Only now is the body parsed.
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("subject_request_id") ||
      !body["subject_request_id"].is_string() ||
      !body.contains("request_status") || !body["request_status"].is_string()) {
    return Refused(400,
                   "not an OpenDSR callback (JSON with subject_request_id and "
                   "request_status)");
  }
  // Section 8.8 step 6: the callback must be meant for this endpoint.
  const std::string callback_url = body.value("status_callback_url", "");
  if (store->opendsr.status_callback_url.empty() ||
      callback_url != store->opendsr.status_callback_url) {
    return Refused(403,
                   "status_callback_url is not this controller's callback "
                   "endpoint for that processor");
  }
  v1::RecordProcessorStatusRequest record;
  record.set_processor_domain(store->opendsr.processor_domain);
  record.set_subject_request_id(body["subject_request_id"].get<std::string>());
  record.set_request_status(body["request_status"].get<std::string>());
  record.set_results_count(body.contains("results_count") &&
                                   body["results_count"].is_number_integer()
                               ? body["results_count"].get<int64_t>()
                               : -1);
  absl::Status forwarded = forward_(record);
  if (!forwarded.ok() && !absl::IsNotFound(forwarded)) {
    if (absl::IsInvalidArgument(forwarded)) {
      return Refused(400, std::string(forwarded.message()));
    }
    return Refused(503, "the callback cannot be recorded now; send it again");
  }
  return JsonReply(202, json{{"accepted", true}}.dump());
}

}  // namespace dsar::gateway::opendsr
