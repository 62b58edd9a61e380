// The OpenDSR callback sink (engine/notifier.h, MakeOpenDsrCallbackSink):
// dsar as a processor telling its controllers that a request's status
// changed (docs/opendsr.md, "dsar as a processor").

#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "engine/notifier.h"
#include "model/event_kinds.h"
#include "nlohmann/json.hpp"
#include "opendsr/processor.h"
#include "opendsr/signature.h"

namespace dsar {
namespace {

class OpenDsrCallbackSink : public NotificationSink {
 public:
  OpenDsrCallbackSink(std::string key_pem, std::string domain,
                      std::string ca_file)
      : key_pem_(std::move(key_pem)), domain_(std::move(domain)) {
    spec_.tls_ca_file = std::move(ca_file);
  }

  bool Accepts(const internal::Notification& notification) const override {
    return notification.kind() == kNotificationOpenDsrCallback;
  }

  absl::Status Deliver(const internal::Notification& notification) override {
    const std::string& body = notification.payload_json();
    nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("status_callback_url") ||
        !parsed["status_callback_url"].is_string()) {
      // Written by QueueOpenDsrCallbacks; never retried into success.
      LogWarning(absl::StrCat("OpenDSR callback ", notification.id(),
                              " has no status_callback_url; dropped"),
                 ForRequest(notification.request_id()));
      return absl::OkStatus();
    }
    const std::string url = parsed["status_callback_url"].get<std::string>();
    absl::StatusOr<std::string> signature = opendsr::SignBody(body, key_pem_);
    if (!signature.ok()) return signature.status();
    absl::StatusOr<opendsr::HttpsAnswer> answer =
        opendsr::SendHttps(spec_, "POST", url, body,
                           {{opendsr::kDomainHeader, domain_},
                            {opendsr::kSignatureHeader, *signature}});
    if (!answer.ok()) {
      // Unreachable, 5xx, 429 (or a URL the controller got wrong, which
      // intake refuses): retried with back-off.
      return absl::UnavailableError(
          absl::StrCat("OpenDSR callback: ", answer.status().message()));
    }
    if (answer->status == 408) {
      return absl::UnavailableError(
          "OpenDSR callback: the controller timed out");
    }
    if (answer->status >= 400) {
      LogWarning(absl::StrCat("OpenDSR callback ", notification.id(),
                              " refused by the controller (", answer->status,
                              "); not retried, the controller can poll"),
                 ForRequest(notification.request_id()));
    }
    return absl::OkStatus();
  }

 private:
  std::string key_pem_;
  std::string domain_;
  OpenDsrSpec spec_;  // Only its TLS settings are used.
};

}  // namespace

std::unique_ptr<NotificationSink> MakeOpenDsrCallbackSink(std::string key_pem,
                                                          std::string domain,
                                                          std::string ca_file) {
  return std::make_unique<OpenDsrCallbackSink>(
      std::move(key_pem), std::move(domain), std::move(ca_file));
}

}  // namespace dsar
