#ifndef DSAR_GATEWAY_ROUTE_PROVIDER_H_
#define DSAR_GATEWAY_ROUTE_PROVIDER_H_

// Routes served by code of their own rather than by transcoding from the
// route table: the seed designs' compatibility routes (gateway/compat/) and
// any later family (OpenDSR). GatewayServer asks its providers, in the order
// it was given them, before its route table; it authenticates the caller
// against the scope the provider names, then lets the provider answer.
// Nothing in the generic gateway knows what a provider's routes mean.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gateway/http_reply.h"
#include "gateway/path_template.h"
#include "gateway/request_auth.h"

namespace dsar::gateway {

// An HTTP request as a provider sees it, independent of the HTTP library.
struct HttpRequest {
  std::string method;
  std::string path;  // Without the query string.
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The query string's parameters, decoded, in order.
  std::vector<std::pair<std::string, std::string>> query;

  // The first value of header `name` (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (absl::EqualsIgnoreCase(key, name)) return value;
    }
    return "";
  }
  // The first value of query parameter `name`; nullopt when absent.
  std::optional<std::string> Query(absl::string_view name) const {
    for (const auto& [key, value] : query) {
      if (key == name) return value;
    }
    return std::nullopt;
  }
};

class RouteProvider {
 public:
  // A route a provider serves, as Find matched it.
  struct Match {
    int route = 0;                      // The provider's own route number.
    std::string required_scope;         // What the caller's token must carry.
    std::vector<PathBinding> bindings;  // The path template's variables.
    // The route carries its own credential (a signed URL): the gateway asks
    // for no token, and Serve gets a Caller with no subject and no scope.
    // The provider must check the credential itself.
    bool authenticates_itself = false;
    // The route's path template ("/dsar/{job_id}"): what metrics and logs
    // name it by, never the path itself (which holds ids).
    std::string path_template;
  };

  virtual ~RouteProvider() = default;

  // The route of this provider for `method` and `path`, or nullopt when it
  // serves none (the request then goes to the next provider and finally to
  // the route table). Thread-safe; does no I/O.
  virtual std::optional<Match> Find(const std::string& method,
                                    const std::string& path) const = 0;

  // Answers `request`, which Find matched as `match`, for a `caller` the
  // gateway has authorized with match.required_scope (unless the route
  // authenticates itself). Every failure is an
  // HttpReply (google.rpc.Status JSON unless the route's own contract says
  // otherwise); never throws. Thread-safe.
  virtual HttpReply Serve(const Match& match, const HttpRequest& request,
                          const Caller& caller) const = 0;
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_ROUTE_PROVIDER_H_
