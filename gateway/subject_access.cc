#include "gateway/subject_access.h"

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

// What masking looks at in one message type: its fields marked
// (dsar.v1.read_scope), with their scope, and its message fields whose type
// holds such a field at some depth. Fields of other types are never visited.
struct MaskPlan {
  std::vector<std::pair<const FieldDescriptor*, std::string>> scoped;
  std::vector<const FieldDescriptor*> nested;
};

ABSL_CONST_INIT absl::Mutex mask_plans_mu(absl::kConstInit);
// Built on first use, one per message type; never freed or changed after.
absl::flat_hash_map<const Descriptor*, std::unique_ptr<MaskPlan>>* mask_plans
    ABSL_GUARDED_BY(mask_plans_mu) = nullptr;

const MaskPlan& MaskPlanFor(const Descriptor* type) {
  absl::MutexLock lock(&mask_plans_mu);
  if (mask_plans == nullptr) {
    mask_plans =
        new absl::flat_hash_map<const Descriptor*, std::unique_ptr<MaskPlan>>();
  }
  std::unique_ptr<MaskPlan>& plan = (*mask_plans)[type];
  if (plan == nullptr) {
    plan = std::make_unique<MaskPlan>();
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      const std::string& scope = field->options().GetExtension(v1::read_scope);
      if (!scope.empty()) {
        plan->scoped.push_back({field, scope});
      } else if (field->message_type() != nullptr) {
        std::set<const Descriptor*> seen;
        if (HasReadScopedFields(field->message_type(), &seen)) {
          plan->nested.push_back(field);
        }
      }
    }
  }
  return *plan;
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
  const MaskPlan& plan = MaskPlanFor(message->GetDescriptor());
  bool masked = false;
  for (const auto& [field, scope] : plan.scoped) {
    if (caller.HasScope(scope)) continue;
    if (field->is_repeated() ? reflection->FieldSize(*message, field) == 0
                             : !reflection->HasField(*message, field)) {
      continue;
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        !field->is_repeated()) {
      reflection->SetString(message, field, kMasked);
    } else {
      reflection->ClearField(message, field);
    }
    masked = true;
  }
  for (const FieldDescriptor* field : plan.nested) {
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
        masked |= MaskUnreadableFields(
            caller, reflection->MutableRepeatedMessage(message, field, i));
      }
    } else if (reflection->HasField(*message, field)) {
      masked |= MaskUnreadableFields(
          caller, reflection->MutableMessage(message, field));
    }
  }
  return masked;
}

bool HasReadScopedFields(const Descriptor* type) {
  const MaskPlan& plan = MaskPlanFor(type);
  return !plan.scoped.empty() || !plan.nested.empty();
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
