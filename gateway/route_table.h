#ifndef DSAR_GATEWAY_ROUTE_TABLE_H_
#define DSAR_GATEWAY_ROUTE_TABLE_H_

// The gateway's routing table, built from the google.api.http and
// dsar.v1.required_scope options of the services it exposes. Nothing here
// names a method: a new annotated RPC gets its route from its descriptor.

#include <google/protobuf/descriptor.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/path_template.h"

namespace dsar::gateway {

// One HTTP binding of one RPC (an RPC with additional_bindings has several).
struct Route {
  std::string http_method;  // "GET", "POST", "PUT", "DELETE", "PATCH", ...
  PathTemplate path;
  // "" (no body: every non-path field comes from the query string), "*"
  // (the body is the whole request message) or a top-level field name.
  std::string body;
  // "" (the whole response message) or a top-level field of the response.
  std::string response_body;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string grpc_path;       // "/dsar.v1.DsarService/GetRequest".
  std::string required_scope;  // Never empty: a route without one is refused.
};

// A route that matched a request, with its path variables.
struct RouteMatch {
  const Route* route = nullptr;
  std::vector<PathBinding> bindings;
};

class RouteTable {
 public:
  // Builds the table from the services named in `service_names` (full
  // names, e.g. "dsar.v1.DsarService"), looked up in `pool`. Every method of
  // those services must carry a google.api.http rule and a required_scope;
  // FAILED_PRECONDITION names the first that does not (an unrouted or
  // unprotected method is a mistake in the proto, not something to skip).
  // NOT_FOUND for a service the pool does not hold, INVALID_ARGUMENT for a
  // bad template or body field. Client-streaming methods are refused;
  // server-streaming ones get no route (their answer is not one JSON
  // message): a RouteProvider serves them, from the same annotation.
  static absl::StatusOr<RouteTable> Build(
      const std::vector<std::string>& service_names,
      const google::protobuf::DescriptorPool& pool);

  // The most specific route whose method and template match. NOT_FOUND when
  // no template matches `path`; UNIMPLEMENTED (HTTP 405 for the caller) when
  // templates match but none for `http_method`.
  absl::StatusOr<RouteMatch> Find(const std::string& http_method,
                                  const std::string& path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;  // Most literal segments first.
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_ROUTE_TABLE_H_
