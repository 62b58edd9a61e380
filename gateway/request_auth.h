#ifndef DSAR_GATEWAY_REQUEST_AUTH_H_
#define DSAR_GATEWAY_REQUEST_AUTH_H_

// Who is calling and may they: the bearer token of an HTTP request checked
// against the scope its route requires (RFC 6750).

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/jwt_verifier.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {

// An authenticated caller.
struct Caller {
  std::string subject;  // Passed to the coordinator as the actor.
  std::set<std::string> scopes;
  nlohmann::json claims;  // The token's payload; empty object in dev mode.

  bool HasScope(const std::string& scope) const {
    return scopes.count(scope) > 0;
  }
};

class RequestAuthenticator {
 public:
  // Verifies tokens with `verifier`.
  explicit RequestAuthenticator(std::unique_ptr<JwtVerifier> verifier)
      : verifier_(std::move(verifier)) {}
  // --insecure_dev: every request is accepted as subject "insecure-dev" with
  // every scope. Only for demos on a developer's machine.
  static std::unique_ptr<RequestAuthenticator> InsecureDev() {
    return std::unique_ptr<RequestAuthenticator>(
        new RequestAuthenticator(nullptr));
  }

  // The caller of a request whose Authorization header is
  // `authorization` ("" when absent), if the token is valid at `now` and
  // carries `scope`. UNAUTHENTICATED when the token is missing or invalid,
  // PERMISSION_DENIED when the scope is missing. Thread-safe.
  absl::StatusOr<Caller> Authorize(const std::string& authorization,
                                   const std::string& scope,
                                   absl::Time now) const;

  bool insecure_dev() const { return verifier_ == nullptr; }

 private:
  std::unique_ptr<JwtVerifier> verifier_;  // Null in insecure dev mode.
};

// The WWW-Authenticate header value for a failed Authorize (RFC 6750 §3):
// no error code when no token was sent, error="invalid_token" for a bad
// one, error="insufficient_scope" with the scope needed for a 403.
std::string WwwAuthenticate(const absl::Status& status,
                            const std::string& scope);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_REQUEST_AUTH_H_
