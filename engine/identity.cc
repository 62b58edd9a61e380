#include "engine/identity.h"

#include "absl/strings/ascii.h"

namespace dsar {

std::string IdentityKey(const v1::SubjectIdentity& identity) {
  switch (identity.type()) {
    case v1::EMAIL:
      return "email";
    case v1::USER_ID:
      return "user_id";
    case v1::PHONE:
      return "phone";
    default:
      return identity.custom_type();
  }
}

v1::SubjectIdentity IdentityFromKey(const std::string& key,
                                    const std::string& value) {
  v1::SubjectIdentity identity;
  if (key == "email") {
    identity.set_type(v1::EMAIL);
  } else if (key == "user_id") {
    identity.set_type(v1::USER_ID);
  } else if (key == "phone") {
    identity.set_type(v1::PHONE);
  } else {
    identity.set_type(v1::CUSTOM);
    identity.set_custom_type(key);
  }
  identity.set_value(value);
  return identity;
}

v1::SubjectIdentity NormalizeIdentity(const v1::SubjectIdentity& identity) {
  v1::SubjectIdentity out = identity;
  std::string value(absl::StripAsciiWhitespace(identity.value()));
  if (identity.type() == v1::EMAIL) {
    absl::AsciiStrToLower(&value);
  } else if (identity.type() == v1::PHONE) {
    std::string digits;
    for (char c : value) {
      if (absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
          (c == '+' && digits.empty())) {
        digits.push_back(c);
      }
    }
    value = digits;
  }
  out.set_value(value);
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
