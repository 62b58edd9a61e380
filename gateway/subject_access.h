#ifndef DSAR_GATEWAY_SUBJECT_ACCESS_H_
#define DSAR_GATEWAY_SUBJECT_ACCESS_H_

// Whose requests a caller reaches (docs/gateway.md, "Who sees what"):
//
// - an operator or service — a token with dsar.admin or dsar.service —
//   reaches every request;
// - any other token is a data subject's: it reaches only the requests whose
//   identities include the identity its token proves (its email when
//   `email_verified` is the JSON boolean true, its `user_id` claim), compared
//   in canonical form through the model's normaliser. Another person's
//   request answers NOT_FOUND, as an unknown id does, so that a subject
//   cannot learn that it exists.
//
// Fields marked (dsar.v1.read_scope) hold personal data: they are masked in
// answers to callers without that scope, except in a data subject's answers
// (which only ever hold their own requests).

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/request_auth.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {

inline constexpr char kAdminScope[] = "dsar.admin";
inline constexpr char kServiceScope[] = "dsar.service";
inline constexpr char kPiiReadScope[] = "dsar.pii.read";

// The text put in place of a masked field.
inline constexpr char kMasked[] = "***";

// Whether a token's `email_verified` claim says the email is verified: only
// the JSON boolean true does. A missing claim, false, the string "true" or
// "false", 1 and anything else do not.
bool EmailVerifiedClaim(const nlohmann::json& claims);

// What a data subject's token proves about its bearer, in canonical form;
// empty members when the token proves nothing of that kind.
struct ProvenSubject {
  std::string email;    // The `email` claim, only when EmailVerifiedClaim.
  std::string user_id;  // The `user_id` claim (a string or an integer).

  bool empty() const { return email.empty() && user_id.empty(); }
  // Whether `identity` (as submitted or as stored) names this subject.
  bool Matches(const v1::SubjectIdentity& identity) const;
  // Whether any identity of `request` names this subject.
  bool Owns(const v1::Request& request) const;
};

// True for a caller that reaches every request (dsar.admin or
// dsar.service).
bool ReachesEveryRequest(const Caller& caller);

// The identity `caller`'s token proves. Meaningful for data subjects only.
ProvenSubject ProvenSubjectOf(const Caller& caller);

// The NOT_FOUND a data subject gets for another person's request: the same
// message dsard gives for an id it does not know.
absl::Status RequestNotFound(const std::string& id);

// Replaces every set field of `message` (nested messages included) marked
// (dsar.v1.read_scope) with a scope `caller` lacks: strings by kMasked,
// other fields are cleared. Returns whether anything was masked.
bool MaskUnreadableFields(const Caller& caller,
                          google::protobuf::Message* message);

// What a data subject may do with one RPC of the routes.
struct SubjectMethodRule {
  enum Kind {
    // Not a dsar.v1 method: the gateway has no rule for its resources and
    // treats every caller alike (the test-only echo service).
    kUngoverned,
    // Open to every caller holding the route's scope: nothing in it belongs
    // to one subject (the audit checkpoint and proofs: hashes only).
    kOpen,
    // CreateRequest: every identity must be the subject's own.
    kCreateOwn,
    // The request named by `request_id_field` must be the subject's own.
    kOwnRequest,
    // ListRequests: the answer keeps only the subject's own requests.
    kListOwn,
    // Operators and services only (PERMISSION_DENIED for subjects).
    kOperatorsOnly,
  };
  Kind kind = kOperatorsOnly;
  std::string request_id_field;  // For kOwnRequest.
};

// The rule for `method`. Every dsar.v1 method not listed in
// subject_access.cc is kOperatorsOnly: a new RPC is closed to data subjects
// until someone decides otherwise.
SubjectMethodRule SubjectRuleFor(
    const google::protobuf::MethodDescriptor* method);

// Whether any field of `type`, or of a message type it contains, is marked
// (dsar.v1.read_scope); lets a caller skip parsing answers with none.
bool HasReadScopedFields(const google::protobuf::Descriptor* type);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_SUBJECT_ACCESS_H_
