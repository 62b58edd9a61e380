// The webhook sink lives in its own translation unit: cpp-httplib is a large
// header and only this file needs it.

#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/notifier.h"

namespace dsar {
namespace {

class WebhookSink : public NotificationSink {
 public:
  WebhookSink(std::string url, std::string secret)
      : url_(std::move(url)), secret_(std::move(secret)) {
    // Split "scheme://host[:port]/path" into the client base and the path.
    size_t scheme_end = url_.find("://");
    size_t path_start = scheme_end == std::string::npos
                            ? std::string::npos
                            : url_.find('/', scheme_end + 3);
    base_ = path_start == std::string::npos ? url_ : url_.substr(0, path_start);
    path_ = path_start == std::string::npos ? "/" : url_.substr(path_start);
  }

  absl::Status Deliver(const internal::Notification& notification) override {
    std::string timestamp = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
    std::string signed_text =
        absl::StrCat(timestamp, ".", notification.payload_json());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(signed_text.data()),
         signed_text.size(), digest, &length);
    std::string signature =
        absl::StrCat("sha256=", absl::BytesToHexString(absl::string_view(
                                    reinterpret_cast<char*>(digest), length)));
    httplib::Client client(base_);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_write_timeout(10);
    httplib::Headers headers = {{"X-DSAR-Delivery", notification.id()},
                                {"X-DSAR-Timestamp", timestamp},
                                {"X-DSAR-Signature", signature}};
    httplib::Result result = client.Post(
        path_, headers, notification.payload_json(), "application/json");
    if (!result) {
      return absl::UnavailableError(absl::StrCat(
          "webhook ", url_, ": ", httplib::to_string(result.error())));
    }
    if (result->status < 200 || result->status >= 300) {
      return absl::UnavailableError(
          absl::StrCat("webhook ", url_, " answered ", result->status));
    }
    return absl::OkStatus();
  }

 private:
  std::string url_;
  std::string secret_;
  std::string base_;
  std::string path_;
};

}  // namespace

std::unique_ptr<NotificationSink> MakeWebhookSink(std::string url,
                                                  std::string secret) {
  return std::make_unique<WebhookSink>(std::move(url), std::move(secret));
}

}  // namespace dsar
