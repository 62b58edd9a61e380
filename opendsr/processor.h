#ifndef DSAR_OPENDSR_PROCESSOR_H_
#define DSAR_OPENDSR_PROCESSOR_H_

// Talking to an OpenDSR 2.0 processor as the inventory describes it
// (OpenDsrSpec): HTTPS calls with the store's TLS settings, its discovery
// answer with the signing certificate checked, and the subject_request_id
// dsar gives a task's processor request. Used by the connector
// (workers/connectors/opendsr.h), by the gateway's callback route and by
// dsard, which matches callbacks to tasks.

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "inventory/inventory.h"
#include "model/task_operation.h"
#include "opendsr/signature.h"

namespace dsar::opendsr {

struct HttpsAnswer {
  int status = 0;
  std::string body;
  std::string signature;  // X-OpenDSR-Signature, "" when absent.
  std::string domain;     // X-OpenDSR-Processor-Domain, "" when absent.
};

// A time as OpenDSR messages carry it (RFC 3339, UTC, whole seconds):
// "2018-10-02T15:00:00Z".
std::string Rfc3339Utc(absl::Time time);

// An https URL in its parts.
struct HttpsUrl {
  std::string host;
  int port = 443;
  std::string path;  // Starts with '/'.
};

// INVALID_ARGUMENT unless `url` is https://host[:port][/path].
absl::StatusOr<HttpsUrl> ParseHttpsUrl(absl::string_view url);

// Sends `method` ("GET", "POST" with a JSON `body`, "DELETE") to the
// absolute https `url` with `spec`'s TLS settings (tls_ca, client
// certificate; the server certificate is always verified) and
// `extra_headers`. UNAVAILABLE when the service cannot be reached or
// answers 5xx or 429; INVALID_ARGUMENT when `url` is not https. Other
// answers are returned.
absl::StatusOr<HttpsAnswer> SendHttps(
    const OpenDsrSpec& spec, const std::string& method, const std::string& url,
    const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

// What a processor's /discovery says, its certificate checked.
struct Discovery {
  ProcessorCertificate certificate;
  std::set<std::string> request_types;
  std::set<std::pair<std::string, std::string>> identities;  // type, format
};

// GET {url}/discovery, then the certificate at its processor_certificate,
// checked against spec.signing_ca_file and spec.processor_domain
// (ProcessorCertificate::Verify). A discovery answer need not be signed
// (the spec shows it without headers); when it is, the signature and the
// domain header must hold. UNAVAILABLE when the service cannot be reached
// or answers other than 200; FAILED_PRECONDITION when the answer is not an
// OpenDSR discovery; UNAUTHENTICATED when the certificate or signature
// fails.
absl::StatusOr<Discovery> FetchDiscovery(const OpenDsrSpec& spec);

// The processor request id of (request, store, operation): UUID v4 in form
// (lowercase, version and variant bits set) whose other bits come from the
// SHA-256 of the three, so every attempt of a task names the same request.
std::string SubjectRequestId(std::string_view request_id,
                             std::string_view store, TaskOperation operation);

}  // namespace dsar::opendsr

#endif  // DSAR_OPENDSR_PROCESSOR_H_
