#ifndef DSAR_ENGINE_IDENTITY_H_
#define DSAR_ENGINE_IDENTITY_H_

// Conversions between the API's typed identities and the inventory's
// identity keys ("email", "user_id", "phone", or a custom type name).

#include <string>
#include <vector>

#include "dsar/v1/requests.pb.h"

namespace dsar {

std::string IdentityKey(const v1::SubjectIdentity& identity);
v1::SubjectIdentity IdentityFromKey(const std::string& key,
                                    const std::string& value);

// Normalises a submitted identity for matching: emails are lowercased and
// trimmed, phones keep only '+' and digits, other values are trimmed.
v1::SubjectIdentity NormalizeIdentity(const v1::SubjectIdentity& identity);

// Appends the identities of `more` that `into` lacks (same key and value).
void MergeIdentities(
    const google::protobuf::RepeatedPtrField<v1::SubjectIdentity>& more,
    google::protobuf::RepeatedPtrField<v1::SubjectIdentity>* into);

}  // namespace dsar

#endif  // DSAR_ENGINE_IDENTITY_H_
