#include "audit_scan/subject_reference.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "model/identity.h"

namespace dsar {

constexpr size_t kMinKeyBytes = 16;
constexpr size_t kReferenceBytes = 16;

absl::StatusOr<std::unique_ptr<SubjectReferencer>> SubjectReferencer::Create(
    std::string key) {
  if (key.size() < kMinKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject reference key: ", key.size(), " bytes; at least ",
                     kMinKeyBytes, " needed"));
  }
  return std::unique_ptr<SubjectReferencer>(
      new SubjectReferencer(std::move(key)));
}

std::string SubjectReferencer::Digest(const std::string& message) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       digest, &length);
  return absl::StrCat(
      "sref:", absl::BytesToHexString(absl::string_view(
                   reinterpret_cast<const char*>(digest), kReferenceBytes)));
}

std::string SubjectReferencer::Reference(const StoreSpec& store,
                                         const CollectionSpec& collection,
                                         const ScannedRecord& record) const {
  std::vector<std::pair<std::string, std::string>> order;
  auto user_id = collection.identity_fields.find(std::string(kUserIdKey));
  if (user_id != collection.identity_fields.end()) order.push_back(*user_id);
  for (const auto& entry : collection.identity_fields) {
    if (entry.first != kUserIdKey) order.push_back(entry);
  }
  for (const auto& [key, field_name] : order) {
    const ScannedField* field = record.Find(field_name);
    if (field == nullptr || !field->value.has_value()) continue;
    absl::StatusOr<std::string> canonical =
        NormalizeIdentityValue(key, *field->value, store.default_phone_region);
    if (!canonical.ok()) continue;
    return Digest(absl::StrCat("identity\x1f", key, "\x1f", *canonical));
  }
  return Digest(absl::StrCat("record\x1f", store.name, "\x1f", collection.name,
                             "\x1f", record.key));
}

}  // namespace dsar
