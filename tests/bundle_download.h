#ifndef DSAR_TESTS_BUNDLE_DOWNLOAD_H_
#define DSAR_TESTS_BUNDLE_DOWNLOAD_H_

// Fetches a completed request's bundle the way clients do (docs/delivery.md):
// CreateDownloadUrl, then DownloadBundle. Tests read bundles through this
// rather than from dsard's data directory, where they are encrypted.

#include <string>

#include "absl/status/statusor.h"
#include "dsar/v1/requests.grpc.pb.h"

namespace dsar::testing {

// The parts of a download URL ("/v1/downloads/<id>?expires=..&.."); fields
// the URL lacks stay empty.
v1::DownloadBundleRequest DownloadRequestFromUrl(const std::string& url);

// Every byte of the bundle of request `id`, checked against the SHA-256 and
// size of the stream's header. The calls' errors as absl statuses; DATA_LOSS
// when the bytes do not match the header.
absl::StatusOr<std::string> DownloadBundleBytes(v1::DsarService::Stub& stub,
                                                const std::string& id);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_BUNDLE_DOWNLOAD_H_
