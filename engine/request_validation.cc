#include "engine/request_validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "model/identity.h"

namespace dsar {
namespace {

bool IsValidEmail(absl::string_view email) {
  // Pragmatic RFC 5321 shape: local@domain with a dot in the domain, no
  // spaces or control characters, sensible lengths.
  if (email.size() > 254) return false;
  size_t at = email.rfind('@');
  if (at == absl::string_view::npos || at == 0 || at > 64) return false;
  absl::string_view local = email.substr(0, at);
  absl::string_view domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == absl::string_view::npos ||
      domain.front() == '.' || domain.back() == '.' ||
      absl::StrContains(domain, "..") ||
      local.find('@') != absl::string_view::npos) {
    return false;
  }
  for (char c : email) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',' ||
        c == ';' || c == '"' || c == '\\' || c == '(' || c == ')') {
      return false;
    }
  }
  for (char c : domain) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

bool IsIdentifier(absl::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// A field may be corrected when the inventory lists it as personal data of
// the store (and collection) the correction names.
bool IsCorrectableField(const StoreSpec& store,
                        const v1::FieldCorrection& correction) {
  for (const CollectionSpec& collection : store.collections) {
    if (!correction.collection().empty() &&
        collection.name != correction.collection()) {
      continue;
    }
    if (collection.pii_fields.count(correction.field()) > 0) return true;
  }
  return false;
}

absl::Status ValidateCorrections(const v1::CreateRequestRequest& request,
                                 const Inventory& inventory) {
  if (request.type() != v1::RECTIFICATION) {
    if (!request.corrections().empty()) {
      return Invalid("corrections", "only allowed for RECTIFICATION requests");
    }
    return absl::OkStatus();
  }
  if (request.corrections().empty()) {
    return Invalid("corrections",
                   "a RECTIFICATION request needs at least one correction");
  }
  if (request.corrections_size() > 100)
    return Invalid("corrections", "at most 100");
  for (int i = 0; i < request.corrections_size(); ++i) {
    const v1::FieldCorrection& correction = request.corrections(i);
    std::string field = absl::StrCat("corrections[", i, "]");
    if (correction.field().empty())
      return Invalid(absl::StrCat(field, ".field"), "required");
    if (correction.value().size() > 4096) {
      return Invalid(absl::StrCat(field, ".value"),
                     "longer than 4096 characters");
    }
    bool correctable = false;
    if (!correction.store().empty()) {
      const StoreSpec* store = inventory.Find(correction.store());
      if (store == nullptr) {
        return Invalid(absl::StrCat(field, ".store"),
                       absl::StrCat("unknown store \"", correction.store(),
                                    "\" (not in the data inventory)"));
      }
      correctable = IsCorrectableField(*store, correction);
    } else {
      for (const StoreSpec& store : inventory.stores()) {
        correctable = correctable || IsCorrectableField(store, correction);
      }
    }
    if (!correctable) {
      return Invalid(
          absl::StrCat(field, ".field"),
          absl::StrCat("\"", correction.field(),
                       "\" is not a personal-data field (pii_fields) of ",
                       correction.store().empty()
                           ? std::string("any store")
                           : absl::StrCat("store \"", correction.store(), "\""),
                       " in the inventory"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCreateRequest(const v1::CreateRequestRequest& request,
                                   const Inventory& inventory) {
  switch (request.type()) {
    case v1::ACCESS:
    case v1::PORTABILITY:
    case v1::ERASURE:
    case v1::RECTIFICATION:
    case v1::RESTRICTION:
    case v1::OBJECTION:
      break;
    case v1::REQUEST_TYPE_UNSPECIFIED:
      return Invalid("type", "required (ACCESS, PORTABILITY, ERASURE, ...)");
    default:
      return Invalid("type", absl::StrCat("unknown request type ",
                                          static_cast<int>(request.type())));
  }
  if (request.identities().empty()) {
    return Invalid("identities",
                   "at least one identity of the subject is required");
  }
  if (request.identities_size() > 32) {
    return Invalid("identities", "at most 32 identities");
  }
  for (int i = 0; i < request.identities_size(); ++i) {
    const v1::SubjectIdentity& identity = request.identities(i);
    std::string field = absl::StrCat("identities[", i, "]");
    absl::string_view value = absl::StripAsciiWhitespace(identity.value());
    if (value.empty())
      return Invalid(absl::StrCat(field, ".value"), "required");
    if (value.size() > 320) {
      return Invalid(absl::StrCat(field, ".value"),
                     "longer than 320 characters");
    }
    switch (identity.type()) {
      case v1::EMAIL:
        if (!IsValidEmail(value)) {
          return Invalid(absl::StrCat(field, ".value"),
                         "not a valid email address");
        }
        break;
      case v1::PHONE:
        // The phone normaliser is the validator: what it cannot bring to
        // E.164 in the inventory's default region cannot be matched.
        if (absl::Status phone =
                NormalizeIdentityValue(
                    kPhoneKey, std::string_view(value.data(), value.size()),
                    inventory.default_phone_region())
                    .status();
            !phone.ok()) {
          return Invalid(absl::StrCat(field, ".value"), phone.message());
        }
        break;
      case v1::USER_ID:
        break;
      case v1::CUSTOM:
        if (!IsIdentifier(identity.custom_type())) {
          return Invalid(absl::StrCat(field, ".custom_type"),
                         "required for CUSTOM identities: [a-z0-9_]{1,64}");
        }
        break;
      case v1::IDENTITY_TYPE_UNSPECIFIED:
        return Invalid(absl::StrCat(field, ".type"),
                       "required (EMAIL, USER_ID, PHONE or CUSTOM)");
      default:
        return Invalid(absl::StrCat(field, ".type"), "unknown identity type");
    }
    if (identity.type() != v1::CUSTOM && !identity.custom_type().empty()) {
      return Invalid(absl::StrCat(field, ".custom_type"),
                     "only allowed when type is CUSTOM");
    }
  }
  if (!request.regulation().empty() && request.regulation() != "GDPR" &&
      request.regulation() != "CCPA") {
    return Invalid("regulation", "must be GDPR or CCPA");
  }
  if (request.idempotency_key().size() > 128) {
    return Invalid("idempotency_key", "longer than 128 characters");
  }
  for (char c : request.idempotency_key()) {
    if (static_cast<unsigned char>(c) < 0x21 ||
        static_cast<unsigned char>(c) > 0x7e) {
      return Invalid("idempotency_key", "only printable ASCII without spaces");
    }
  }
  RETURN_IF_ERROR(ValidateCorrections(request, inventory));
  for (int i = 0; i < request.stores_size(); ++i) {
    if (inventory.Find(request.stores(i)) == nullptr) {
      return Invalid(absl::StrCat("stores[", i, "]"),
                     absl::StrCat("unknown store \"", request.stores(i),
                                  "\" (not in the data inventory)"));
    }
    for (int j = 0; j < i; ++j) {
      if (request.stores(j) == request.stores(i)) {
        return Invalid(absl::StrCat("stores[", i, "]"), "duplicate store");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateIdAndReason(const std::string& id,
                                 const std::string& reason,
                                 absl::string_view required_hint) {
  if (id.empty()) return Invalid("id", "required");
  if (reason.empty() && !required_hint.empty()) {
    return Invalid("reason", absl::StrCat("required (", required_hint, ")"));
  }
  if (reason.size() > 1024)
    return Invalid("reason", "longer than 1024 characters");
  return absl::OkStatus();
}

}  // namespace dsar
