#include "opendsr/processor.h"

#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace dsar::opendsr {
namespace {

using nlohmann::json;

}  // namespace

std::string Rfc3339Utc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<HttpsUrl> ParseHttpsUrl(absl::string_view url) {
  if (!absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError("not an https:// URL");
  }
  absl::string_view rest = url.substr(8);
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  HttpsUrl parsed;
  parsed.path =
      slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t colon = authority.rfind(':');
  if (colon != absl::string_view::npos &&
      authority.find(']') == absl::string_view::npos) {
    if (!absl::SimpleAtoi(authority.substr(colon + 1), &parsed.port)) {
      return absl::InvalidArgumentError("not an https:// URL (bad port)");
    }
    authority = authority.substr(0, colon);
  }
  parsed.host = std::string(authority);
  if (parsed.host.empty()) {
    return absl::InvalidArgumentError("not an https:// URL (no host)");
  }
  return parsed;
}

absl::StatusOr<HttpsAnswer> SendHttps(
    const OpenDsrSpec& spec, const std::string& method, const std::string& url,
    const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  ASSIGN_OR_RETURN(HttpsUrl parsed, ParseHttpsUrl(url));
  std::unique_ptr<httplib::SSLClient> client =
      spec.client_cert_file.empty()
          ? std::make_unique<httplib::SSLClient>(parsed.host, parsed.port)
          : std::make_unique<httplib::SSLClient>(parsed.host, parsed.port,
                                                 spec.client_cert_file,
                                                 spec.client_key_file);
  if (!spec.tls_ca_file.empty()) {
    client->set_ca_cert_path(spec.tls_ca_file.c_str());
  }
  client->enable_server_certificate_verification(true);
  client->set_connection_timeout(5);
  client->set_read_timeout(30);
  client->set_write_timeout(30);
  httplib::Headers headers = {{"Accept", "application/json"}};
  for (const auto& [name, value] : extra_headers) headers.emplace(name, value);
  httplib::Result result =
      method == "GET"      ? client->Get(parsed.path.c_str(), headers)
      : method == "DELETE" ? client->Delete(parsed.path.c_str(), headers)
                           : client->Post(parsed.path.c_str(), headers, body,
                                          "application/json");
  const std::string where = absl::StrCat(method, " ", parsed.path);
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat(where, ": the service cannot be reached: ",
                     httplib::to_string(result.error())));
  }
  if (result->status >= 500 || result->status == 429) {
    return absl::UnavailableError(
        absl::StrCat(where, ": the service answered ", result->status));
  }
  HttpsAnswer answer;
  answer.status = result->status;
  answer.body = std::move(result->body);
  answer.signature = result->get_header_value(kSignatureHeader);
  answer.domain = result->get_header_value(kDomainHeader);
  return answer;
}

absl::StatusOr<Discovery> FetchDiscovery(const OpenDsrSpec& spec) {
  ASSIGN_OR_RETURN(HttpsAnswer answer,
                   SendHttps(spec, "GET", spec.url + "/discovery", ""));
  if (answer.status != 200) {
    return absl::UnavailableError(
        absl::StrCat("the service answered ", answer.status));
  }
  json body = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("processor_certificate") ||
      !body["processor_certificate"].is_string() ||
      !body.contains("supported_subject_request_types") ||
      !body["supported_subject_request_types"].is_array() ||
      !body.contains("supported_identities") ||
      !body["supported_identities"].is_array()) {
    return absl::FailedPreconditionError(
        "not an OpenDSR discovery answer (needs processor_certificate, "
        "supported_subject_request_types, supported_identities)");
  }
  // The certificate is trusted for what it is (chain to signing_ca, SAN
  // naming processor_domain), not for where it came from.
  absl::StatusOr<HttpsAnswer> pem = SendHttps(
      spec, "GET", body["processor_certificate"].get<std::string>(), "");
  if (!pem.ok()) {
    return absl::Status(
        pem.status().code(),
        absl::StrCat("processor_certificate: ", pem.status().message()));
  }
  if (pem->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("the processor certificate's URL answered ", pem->status));
  }
  absl::StatusOr<ProcessorCertificate> verified_certificate =
      ProcessorCertificate::Verify(pem->body, spec.signing_ca_file,
                                   spec.processor_domain);
  if (!verified_certificate.ok()) {
    // An unreadable CA file, too, leaves the certificate unverified.
    return absl::UnauthenticatedError(verified_certificate.status().message());
  }
  ProcessorCertificate certificate = *std::move(verified_certificate);
  if (!answer.signature.empty()) {
    absl::Status verified =
        certificate.CheckSignature(answer.body, answer.signature);
    if (!verified.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("answer refused: ", verified.message()));
    }
    if (!absl::EqualsIgnoreCase(answer.domain, spec.processor_domain)) {
      return absl::UnauthenticatedError(
          absl::StrCat("answer refused: names processor domain \"",
                       answer.domain.substr(0, 253), "\", not \"",
                       spec.processor_domain, "\""));
    }
  }
  Discovery discovery{std::move(certificate), {}, {}};
  for (const json& type : body["supported_subject_request_types"]) {
    if (type.is_string()) {
      discovery.request_types.insert(type.get<std::string>());
    }
  }
  for (const json& identity : body["supported_identities"]) {
    if (!identity.is_object()) continue;
    discovery.identities.emplace(identity.value("identity_type", ""),
                                 identity.value("identity_format", "raw"));
  }
  return discovery;
}

std::string SubjectRequestId(std::string_view request_id,
                             std::string_view store, TaskOperation operation) {
  Sha256 hash;
  hash.Update("dsar opendsr subject_request_id v1");
  for (std::string_view part :
       {request_id, store, TaskOperationName(operation)}) {
    hash.Update(std::string_view("\0", 1));
    hash.Update(part);
  }
  std::string bytes = hash.FinishRaw();
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);  // Version 4.
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122.
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    absl::StrAppendFormat(&hex, "%02x", static_cast<unsigned char>(bytes[i]));
  }
  return hex;
}

}  // namespace dsar::opendsr
