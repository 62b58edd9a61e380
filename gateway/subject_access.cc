#include "gateway/subject_access.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dsar/v1/auth.pb.h"
#include "model/identity.h"

namespace dsar::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A claim as text: strings as they are, integers in decimal, else "".
std::string ClaimText(const nlohmann::json& claims, const char* name) {
  if (!claims.is_object()) return "";
  auto it = claims.find(name);
  if (it == claims.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  return "";
}

// The canonical form of `value` for identity `key`, or "" when it has none.
std::string Canonical(std::string_view key, const std::string& value) {
  if (value.empty()) return "";
  absl::StatusOr<std::string> canonical =
      NormalizeIdentityValue(key, value, "");
  return canonical.ok() ? *std::move(canonical) : "";
}

bool HasReadScopedFields(const Descriptor* type,
                         std::set<const Descriptor*>* seen) {
  if (!seen->insert(type).second) return false;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (!field->options().GetExtension(v1::read_scope).empty()) return true;
    if (field->message_type() != nullptr &&
        HasReadScopedFields(field->message_type(), seen)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool EmailVerifiedClaim(const nlohmann::json& claims) {
  if (!claims.is_object()) return false;
  auto it = claims.find("email_verified");
  return it != claims.end() && it->is_boolean() && it->get<bool>();
}

bool ProvenSubject::Matches(const v1::SubjectIdentity& identity) const {
  if (identity.type() == v1::EMAIL && !email.empty()) {
    return Canonical(kEmailKey, identity.value()) == email;
  }
  if (identity.type() == v1::USER_ID && !user_id.empty()) {
    return Canonical(kUserIdKey, identity.value()) == user_id;
  }
  return false;
}

bool ProvenSubject::Owns(const v1::Request& request) const {
  for (const v1::SubjectIdentity& identity : request.identities()) {
    if (Matches(identity)) return true;
  }
  return false;
}

bool ReachesEveryRequest(const Caller& caller) {
  return caller.HasScope(kAdminScope) || caller.HasScope(kServiceScope);
}

ProvenSubject ProvenSubjectOf(const Caller& caller) {
  ProvenSubject subject;
  if (EmailVerifiedClaim(caller.claims)) {
    subject.email = Canonical(kEmailKey, ClaimText(caller.claims, "email"));
  }
  subject.user_id = Canonical(kUserIdKey, ClaimText(caller.claims, "user_id"));
  return subject;
}

absl::Status RequestNotFound(const std::string& id) {
  // storage/state_store.cc's message for an unknown id, word for word.
  return absl::NotFoundError(absl::StrCat("request ", id, " not found"));
}

bool MaskUnreadableFields(const Caller& caller, Message* message) {
  const Reflection* reflection = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  bool masked = false;
  for (const FieldDescriptor* field : fields) {
    const std::string& scope = field->options().GetExtension(v1::read_scope);
    if (!scope.empty() && !caller.HasScope(scope)) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
          !field->is_repeated()) {
        reflection->SetString(message, field, kMasked);
      } else {
        reflection->ClearField(message, field);
      }
      masked = true;
      continue;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
        masked |= MaskUnreadableFields(
            caller, reflection->MutableRepeatedMessage(message, field, i));
      }
    } else {
      masked |= MaskUnreadableFields(
          caller, reflection->MutableMessage(message, field));
    }
  }
  return masked;
}

bool HasReadScopedFields(const Descriptor* type) {
  std::set<const Descriptor*> seen;
  return HasReadScopedFields(type, &seen);
}

SubjectMethodRule SubjectRuleFor(
    const google::protobuf::MethodDescriptor* method) {
  using Kind = SubjectMethodRule::Kind;
  if (method->service()->file()->package() != "dsar.v1") {
    return {Kind::kUngoverned, ""};
  }
  const std::string& name = method->full_name();
  if (name == "dsar.v1.DsarService.CreateRequest") {
    return {Kind::kCreateOwn, ""};
  }
  if (name == "dsar.v1.DsarService.ListRequests") return {Kind::kListOwn, ""};
  // VerifyIdentity too: the subject proves with the code that the request
  // names them, but only the owner may try (no existence oracle by id).
  // CreateDownloadUrl: a subject fetches the answer to their own request
  // (docs/delivery.md); RevokeDownloadUrls stays with operators.
  if (name == "dsar.v1.DsarService.GetRequest" ||
      name == "dsar.v1.DsarService.VerifyIdentity" ||
      name == "dsar.v1.DsarService.CreateDownloadUrl") {
    return {Kind::kOwnRequest, "id"};
  }
  if (name == "dsar.v1.DsarService.ListEvents" ||
      name == "dsar.v1.AuditService.GetRequestEntries") {
    return {Kind::kOwnRequest, "request_id"};
  }
  if (name == "dsar.v1.AuditService.GetCheckpoint" ||
      name == "dsar.v1.AuditService.GetInclusionProof" ||
      name == "dsar.v1.AuditService.GetConsistencyProof") {
    return {Kind::kOpen, ""};
  }
  return {Kind::kOperatorsOnly, ""};
}

}  // namespace dsar::gateway
