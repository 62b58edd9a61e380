#ifndef DSAR_GATEWAY_BUNDLE_DOWNLOAD_H_
#define DSAR_GATEWAY_BUNDLE_DOWNLOAD_H_

// The download route of signed bundle URLs (docs/delivery.md):
// GET /v1/downloads/{id}?expires=..&generation=..&nonce=..&sig=.., the route
// of DsarService.DownloadBundle's google.api.http annotation. The URL's
// signature is the credential: no bearer token is asked for, and the gateway
// calls DownloadBundle with its own certificate, which dsard checks the
// signature against. The bundle streams through: each gRPC chunk is read
// only when the HTTP client took the previous one, so memory stays a chunk
// or two whatever the bundle's size.

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/backend_client.h"
#include "gateway/route_provider.h"

namespace dsar::gateway {

// The HTTP status of a refused download: INVALID_ARGUMENT 400 (malformed
// URL), PERMISSION_DENIED 403 (bad signature), NOT_FOUND 404,
// FAILED_PRECONDITION 410 Gone (expired or revoked URL, purged bundle: this
// URL will never work again, a new one is needed), the others as
// HttpStatusForCode.
int DownloadHttpStatus(absl::StatusCode code);

class BundleDownloadRoutes : public RouteProvider {
 public:
  // Reads the route from DsarService.DownloadBundle's annotation.
  // FAILED_PRECONDITION when it has none or it is not a GET.
  // `download_timeout` bounds a whole download (the gRPC deadline).
  static absl::StatusOr<std::unique_ptr<BundleDownloadRoutes>> Create(
      std::shared_ptr<const BackendClient> backend,
      absl::Duration download_timeout);

  std::optional<Match> Find(const std::string& method,
                            const std::string& path) const override;
  HttpReply Serve(const Match& match, const HttpRequest& request,
                  const Caller& caller) const override;

 private:
  BundleDownloadRoutes(std::shared_ptr<const BackendClient> backend,
                       absl::Duration download_timeout, PathTemplate path)
      : backend_(std::move(backend)),
        download_timeout_(download_timeout),
        path_(std::move(path)) {}

  std::shared_ptr<const BackendClient> backend_;
  absl::Duration download_timeout_;
  PathTemplate path_;
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_BUNDLE_DOWNLOAD_H_
