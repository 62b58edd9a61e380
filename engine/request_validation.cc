#include "engine/request_validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "model/field_types.h"
#include "model/identity.h"
#include "model/regulation.h"

namespace dsar {
namespace {

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
// the store (and collection) the correction names. Checks the corrected
// value against the field's declared type in each such collection (the
// connectors check again before writing); sets `*correctable`.
absl::Status CheckCorrectableField(const StoreSpec& store,
                                   const v1::FieldCorrection& correction,
                                   const std::string& value_path,
                                   bool* correctable) {
  for (const CollectionSpec& collection : store.collections) {
    if (!correction.collection().empty() &&
        collection.name != correction.collection()) {
      continue;
    }
    if (collection.pii_fields.count(correction.field()) == 0) continue;
    *correctable = true;
    absl::Status valid =
        ValidateFieldValue(FieldTypeOf(collection, correction.field()),
                           correction.value(), store.default_phone_region);
    if (!valid.ok()) return Invalid(value_path, valid.message());
  }
  return absl::OkStatus();
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
      RETURN_IF_ERROR(CheckCorrectableField(
          *store, correction, absl::StrCat(field, ".value"), &correctable));
    } else {
      for (const StoreSpec& store : inventory.stores()) {
        RETURN_IF_ERROR(CheckCorrectableField(
            store, correction, absl::StrCat(field, ".value"), &correctable));
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
    case v1::AUDIT_SCAN:
      return Invalid("type",
                     "AUDIT_SCAN is not a data subject's request: dsard's "
                     "schedule starts audit scans, or `dsarctl audit-scan "
                     "run` (AuditScanService.RunAuditScan)");
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
        if (!ValidateFieldValue(FieldType::kEmail,
                                std::string_view(value.data(), value.size()),
                                "")
                 .ok()) {
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
  if (!request.regulation().empty() &&
      !ParseRegulation(request.regulation()).has_value()) {
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

std::string QuotedPrefix(absl::string_view value) {
  constexpr size_t kShown = 32;
  if (value.size() <= kShown) return absl::StrCat("\"", value, "\"");
  return absl::StrCat("\"", value.substr(0, kShown), "...\" (", value.size(),
                      " bytes)");
}

absl::Status ValidateRequestId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return Invalid(field, "required");
  bool plain = id.size() <= kMaxRequestIdBytes;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      plain = false;
    }
  }
  if (!plain) {
    return Invalid(field, absl::StrCat(QuotedPrefix(id),
                                       " is not a request id (letters, "
                                       "digits, _ and -, at most ",
                                       kMaxRequestIdBytes, " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateIdAndReason(const std::string& id,
                                 const std::string& reason,
                                 absl::string_view required_hint) {
  RETURN_IF_ERROR(ValidateRequestId("id", id));
  if (reason.empty() && !required_hint.empty()) {
    return Invalid("reason", absl::StrCat("required (", required_hint, ")"));
  }
  if (reason.size() > 1024)
    return Invalid("reason", "longer than 1024 characters");
  return absl::OkStatus();
}

}  // namespace dsar
