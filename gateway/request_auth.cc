#include "gateway/request_auth.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dsar::gateway {
namespace {

constexpr char kNoToken[] = "no bearer token";
constexpr char kDevSubject[] = "insecure-dev";
constexpr char kRealm[] = "Bearer realm=\"dsar\"";

// A quoted-string parameter value: no quotes or backslashes inside.
std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c != '"' && c != '\\' && c >= 0x20) out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<Caller> RequestAuthenticator::Authorize(
    const std::string& authorization, const std::string& scope,
    absl::Time now) const {
  if (verifier_ == nullptr) {
    Caller caller;
    caller.subject = kDevSubject;
    caller.scopes = {"dsar.submit",  "dsar.read",     "dsar.admin",
                     "dsar.service", "dsar.pii.read", scope};
    caller.claims = nlohmann::json::object();
    return caller;
  }
  absl::string_view header = absl::StripAsciiWhitespace(authorization);
  if (header.empty()) return absl::UnauthenticatedError(kNoToken);
  if (header.size() < 7 || !absl::StartsWithIgnoreCase(header, "Bearer ")) {
    return absl::UnauthenticatedError(
        "the Authorization header must be \"Bearer <token>\"");
  }
  std::string token(absl::StripAsciiWhitespace(header.substr(7)));
  absl::StatusOr<VerifiedToken> verified = verifier_->Verify(token, now);
  if (!verified.ok()) return verified.status();
  if (verified->scopes.count(scope) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token lacks the scope \"", scope, "\""));
  }
  Caller caller;
  caller.subject = std::move(verified->subject);
  caller.scopes = std::move(verified->scopes);
  caller.claims = std::move(verified->claims);
  return caller;
}

std::string WwwAuthenticate(const absl::Status& status,
                            const std::string& scope) {
  if (status.code() == absl::StatusCode::kPermissionDenied) {
    return absl::StrCat(
        kRealm, ", error=\"insufficient_scope\", scope=", Quoted(scope));
  }
  if (status.message() == kNoToken) return kRealm;
  return absl::StrCat(kRealm, ", error=\"invalid_token\", error_description=",
                      Quoted(status.message()));
}

}  // namespace dsar::gateway
