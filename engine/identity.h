#ifndef DSAR_ENGINE_IDENTITY_H_
#define DSAR_ENGINE_IDENTITY_H_

// The engine's view of subject identities. The vocabulary (IdentityKey,
// IdentityFromKey) and the one normaliser live in model/identity.h; this
// header keeps the engine's names for them.

#include <string>
#include <string_view>
#include <vector>

#include "dsar/v1/requests.pb.h"
#include "model/identity.h"

namespace dsar {

// The identity with its value in canonical form (model/identity.h:
// NormalizeIdentityValue), phone numbers without a country code read in
// `default_phone_region` (Inventory::default_phone_region()). Total: a value
// the normaliser refuses comes back trimmed; ValidateCreateRequest refuses
// such identities before intake, so stored requests hold canonical values.
v1::SubjectIdentity NormalizeIdentity(const v1::SubjectIdentity& identity,
                                      std::string_view default_phone_region);

// Appends the identities of `more` that `into` lacks (same key and value).
void MergeIdentities(
    const google::protobuf::RepeatedPtrField<v1::SubjectIdentity>& more,
    google::protobuf::RepeatedPtrField<v1::SubjectIdentity>* into);

}  // namespace dsar

#endif  // DSAR_ENGINE_IDENTITY_H_
