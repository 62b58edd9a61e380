#ifndef DSAR_GATEWAY_GATEWAY_SERVER_H_
#define DSAR_GATEWAY_GATEWAY_SERVER_H_

// The HTTP side of dsar-gateway: accepts HTTP/1.1 requests, authenticates
// them, and serves them by transcoding to the RPC that the route table names,
// or from a RouteProvider it was given (route_provider.h) for the routes
// that have code of their own.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/backend_client.h"
#include "gateway/http_reply.h"
#include "gateway/request_auth.h"
#include "gateway/route_provider.h"
#include "gateway/route_table.h"
#include "gateway/subject_access.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace dsar::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see Bind).
  // PEM files of the HTTPS listener: the certificate (chain, leaf first) and
  // its private key. Both empty: plain HTTP (the caller decides where that
  // is acceptable). One without the other is an error.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Full names of the gRPC services to expose.
  std::vector<std::string> services = {
      "dsar.v1.DsarService", "dsar.v1.AuditService", "dsar.v1.AdminService"};
  size_t max_body_bytes = 1 << 20;  // Larger bodies: 413.
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  int keep_alive_max_requests = 1000;
  int threads = 16;
  // How long a plain-HTTP keep-alive connection waits for its next request
  // awake (next_request_spin.h, docs/gateway.md); zero: it sleeps at once.
  // At most one connection per two cores spins at a time.
  absl::Duration next_request_spin = absl::ZeroDuration();
  bool access_log = true;  // One line per request on stderr.
  // Where the HTTP metrics go (dsar_http_*, docs/operations.md); null:
  // none. Must outlive the server.
  std::shared_ptr<prometheus::Registry> metrics;
};

class GatewayServer {
 public:
  // Builds the route table from the linked descriptors of options.services
  // (failing as RouteTable::Build does) and, with options.tls_cert_file and
  // tls_key_file, the TLS context (TLS 1.2 or later): INVALID_ARGUMENT when
  // only one is set, or naming the file when the certificate or key cannot
  // be read or loaded, or do not match. Transcoded calls go through
  // `backend`. `providers` are asked, in order, before the route table: the
  // first whose Find matches serves the request.
  static absl::StatusOr<std::unique_ptr<GatewayServer>> Create(
      const GatewayOptions& options,
      std::unique_ptr<RequestAuthenticator> authenticator,
      std::shared_ptr<const BackendClient> backend,
      std::vector<std::unique_ptr<RouteProvider>> providers = {});
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // Binds the listening socket; returns the port (the chosen one when
  // options.port is 0). UNAVAILABLE when the address cannot be bound.
  // Over TLS a client that does not complete a TLS handshake (plain HTTP)
  // is disconnected without an answer.
  absl::StatusOr<int> Bind();
  // Serves until Stop(). REQUIRES: Bind() succeeded.
  void Serve();
  // Makes Serve() return. Thread-safe; callable before Serve starts.
  void Stop();

  // Answers one request: the whole routing, auth and transcoding logic,
  // without the socket. `headers` lookups are case-insensitive. `route`
  // (when given) gets the matched route's path template, or "unmatched".
  HttpReply Handle(const httplib::Request& request,
                   std::string* route = nullptr) const;

  const RouteTable& routes() const { return routes_; }

 private:
  GatewayServer(const GatewayOptions& options, RouteTable routes,
                std::unique_ptr<httplib::Server> http,
                std::unique_ptr<RequestAuthenticator> authenticator,
                std::shared_ptr<const BackendClient> backend,
                std::vector<std::unique_ptr<RouteProvider>> providers);
  HttpReply Transcode(const RouteMatch& match, const httplib::Request& request,
                      const Caller& caller) const;
  // OK when a data subject's `caller` may make the call `message` under
  // `rule` (subject_access.h); PERMISSION_DENIED, or NOT_FOUND for another
  // person's request (or an unknown one, as dsard says it), otherwise.
  absl::Status CheckSubjectCall(const SubjectMethodRule& rule,
                                const google::protobuf::Message& message,
                                const Caller& caller) const;
  // Drops from a serialized ListRequestsResponse every request that is not
  // the data subject `caller`'s own; the page token stays dsard's.
  absl::Status KeepSubjectsOwnRequests(const Caller& caller,
                                       std::string* serialized) const;

  GatewayOptions options_;
  RouteTable routes_;
  std::unique_ptr<RequestAuthenticator> authenticator_;
  std::shared_ptr<const BackendClient> backend_;
  std::vector<std::unique_ptr<RouteProvider>> providers_;
  std::unique_ptr<httplib::Server> http_;
  // Null without options.metrics.
  prometheus::Family<prometheus::Counter>* http_requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* http_seconds_ = nullptr;
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_GATEWAY_SERVER_H_
