#ifndef DSAR_GATEWAY_OPENDSR_PROCESSOR_ROUTES_H_
#define DSAR_GATEWAY_OPENDSR_PROCESSOR_ROUTES_H_

// dsar as an OpenDSR 2.0 processor (docs/opendsr.md, "dsar as a
// processor"): the endpoints a controller calls, under /opendsr/v1.
//   GET    /opendsr/v1/discovery                   public; section 6
//   GET    /opendsr/v1/processor-certificate.pem   public; the signing cert
//   POST   /opendsr/v1/requests                    201; section 7
//   GET    /opendsr/v1/requests/{id}               200; section 8
//   DELETE /opendsr/v1/requests/{id}               202; section 9
// The request routes need a token with scope "opendsr.controller"; its
// subject is the controller_id, so a controller reaches its own requests
// only. Every JSON answer (errors too) is signed: X-OpenDSR-Signature over
// the raw body with the processor's key, X-OpenDSR-Processor-Domain.
// Errors are the spec's error object (section 7.6) with the HTTP status
// of the failure: 400 for bad input (naming the field), 404 for a request
// the controller does not have, 409 for a subject_request_id used for a
// different request, 503 when dsard cannot be reached.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsar/v1/opendsr.pb.h"
#include "gateway/route_provider.h"

namespace dsar::gateway::opendsr {

inline constexpr char kControllerScope[] = "opendsr.controller";

struct ProcessorOptions {
  // The gateway's public base URL ("https://dsar.example.com"): where the
  // certificate is fetched from and download URLs (results_url) point.
  std::string public_url;
  std::string domain;    // The processor's OpenDSR domain (its cert's SAN).
  std::string key_pem;   // The signing certificate's private key.
  std::string cert_pem;  // The signing certificate, served as is.
  // Hosts status_callback_urls may name (exact, case-insensitive); empty:
  // any https host. A deployment lists its controllers' hosts, so dsard
  // never calls an address a token holder picked (server-side request
  // forgery).
  std::vector<std::string> callback_hosts;
};

class ProcessorRoutes : public RouteProvider {
 public:
  // Calls dsard: (gRPC method path, serialized request, actor) -> the
  // serialized answer or its status (BackendClient::Call).
  using Backend = std::function<absl::StatusOr<std::string>(
      const std::string& grpc_path, const std::string& request,
      const std::string& actor)>;

  ProcessorRoutes(ProcessorOptions options, Backend backend);

  std::optional<Match> Find(const std::string& method,
                            const std::string& path) const override;
  HttpReply Serve(const Match& match, const HttpRequest& request,
                  const Caller& caller) const override;

 private:
  HttpReply Discovery() const;
  HttpReply Create(const HttpRequest& request, const Caller& caller) const;
  HttpReply Status(const std::string& id, const Caller& caller) const;
  HttpReply Cancel(const std::string& id, const Caller& caller) const;
  // Asks dsard's `method` (Get or Cancel) about the caller's request `id`.
  absl::StatusOr<v1::ProcessorRequestStatus> AskAbout(
      const char* method, const std::string& id, const Caller& caller) const;
  // `body` as a signed JSON answer with `status`.
  HttpReply Signed(int status, std::string body) const;
  // The error object (section 7.6) for `error`, signed.
  HttpReply Error(const absl::Status& error) const;

  ProcessorOptions options_;
  Backend backend_;
};

}  // namespace dsar::gateway::opendsr

#endif  // DSAR_GATEWAY_OPENDSR_PROCESSOR_ROUTES_H_
