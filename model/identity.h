#ifndef DSAR_MODEL_IDENTITY_H_
#define DSAR_MODEL_IDENTITY_H_

// The identity vocabulary every program shares, and its one normaliser.
//
// An identity key names a kind of identity: "email", "user_id", "phone", or
// a custom type such as "customer_number". The inventory maps keys to the
// fields that hold them; the API carries them as v1::SubjectIdentity.
//
// Canonical forms, in which values of one key are compared everywhere (at
// intake, and by connectors for the values they read from stores):
//   email    trimmed, ASCII letters lowercased ("Jane@Example.COM " ->
//            "jane@example.com"). The shape is not checked here: see
//            ValidateFieldValue(FieldType::kEmail, ...).
//   phone    E.164 ("+447700454764"), parsed with libphonenumber; a number
//            without a country code is read in the default region (the
//            inventory's default_phone_region).
//   user_id  trimmed only, never reinterpreted ("007" stays "007").
//   custom   trimmed only.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dsar/v1/requests.pb.h"

namespace dsar {

inline constexpr std::string_view kEmailKey = "email";
inline constexpr std::string_view kUserIdKey = "user_id";
inline constexpr std::string_view kPhoneKey = "phone";

// The identity key of a typed identity: "email", "user_id", "phone" or its
// custom_type.
std::string IdentityKey(const v1::SubjectIdentity& identity);
// The typed identity for `key` (CUSTOM with custom_type = key when not one of
// the three known keys), holding `value` as given.
v1::SubjectIdentity IdentityFromKey(const std::string& key,
                                    const std::string& value);

// True when `region` is an ISO 3166-1 alpha-2 code ("GB") for which phone
// numbering metadata exists.
bool IsKnownPhoneRegion(std::string_view region);

// The canonical form of `value` as an identity of `key` (see above).
// `default_phone_region` is an ISO 3166-1 alpha-2 code or empty (then phone
// numbers must start with + and a country code). INVALID_ARGUMENT when the
// value is empty after trimming, or for a phone that is not a possible
// number; the message gives the reason ("not a valid phone number: too
// short") and never the value.
absl::StatusOr<std::string> NormalizeIdentityValue(
    std::string_view key, std::string_view value,
    std::string_view default_phone_region);

// NormalizeIdentityValue applied to a typed identity: the same identity with
// its value in canonical form.
absl::StatusOr<v1::SubjectIdentity> NormalizeSubjectIdentity(
    const v1::SubjectIdentity& identity, std::string_view default_phone_region);

// The ways a phone number in canonical form `e164` is commonly written once
// spaces, dashes, dots and brackets are removed: the E.164 form itself, the
// national form with its trunk prefix ("07700454764") and the national
// significant number ("7700454764"), without duplicates. Stores that keep
// phones as typed hold one of these; connectors use them to find candidates
// through an index and confirm each with NormalizeIdentityValue. Empty when
// `e164` is not canonical.
std::vector<std::string> PhoneLookupForms(std::string_view e164);

}  // namespace dsar

#endif  // DSAR_MODEL_IDENTITY_H_
