#include "engine/identity.h"

#include "absl/strings/ascii.h"

namespace dsar {

v1::SubjectIdentity NormalizeIdentity(const v1::SubjectIdentity& identity,
                                      std::string_view default_phone_region) {
  absl::StatusOr<v1::SubjectIdentity> normalized =
      NormalizeSubjectIdentity(identity, default_phone_region);
  if (normalized.ok()) return *std::move(normalized);
  v1::SubjectIdentity out = identity;
  out.set_value(std::string(absl::StripAsciiWhitespace(identity.value())));
  return out;
}

void MergeIdentities(
    const google::protobuf::RepeatedPtrField<v1::SubjectIdentity>& more,
    google::protobuf::RepeatedPtrField<v1::SubjectIdentity>* into) {
  for (const v1::SubjectIdentity& candidate : more) {
    bool known = false;
    for (const v1::SubjectIdentity& existing : *into) {
      if (IdentityKey(existing) == IdentityKey(candidate) &&
          existing.value() == candidate.value()) {
        known = true;
        break;
      }
    }
    if (!known) *into->Add() = candidate;
  }
}

}  // namespace dsar
