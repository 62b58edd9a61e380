#include "workers/connectors/identity_match.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dsar {

bool IsCaseInsensitiveIdentityKey(std::string_view key) {
  return key == "email";
}

std::string NormalizeIdentityValue(std::string_view key,
                                   std::string_view value) {
  if (IsCaseInsensitiveIdentityKey(key)) {
    return absl::AsciiStrToLower(absl::string_view(value.data(), value.size()));
  }
  return std::string(value);
}

IdentityMatcher::IdentityMatcher(const std::vector<Identity>& identities) {
  for (const Identity& identity : identities) {
    if (identity.value.empty()) continue;  // Would match every empty field.
    values_[identity.key].insert(
        NormalizeIdentityValue(identity.key, identity.value));
  }
}

const std::set<std::string>& IdentityMatcher::ValuesFor(
    const std::string& key) const {
  static const auto* const kNone = new std::set<std::string>();
  auto it = values_.find(key);
  return it == values_.end() ? *kNone : it->second;
}

bool IdentityMatcher::Matches(const std::string& key,
                              std::string_view value) const {
  auto it = values_.find(key);
  if (it == values_.end() || value.empty()) return false;
  return it->second.count(NormalizeIdentityValue(key, value)) > 0;
}

DiscoveredIdentities::DiscoveredIdentities(const std::vector<Identity>& given) {
  for (const Identity& identity : given) {
    seen_.emplace(identity.key,
                  NormalizeIdentityValue(identity.key, identity.value));
  }
}

void DiscoveredIdentities::Add(const std::string& key, std::string value) {
  if (value.empty()) return;
  if (!seen_.emplace(key, NormalizeIdentityValue(key, value)).second) return;
  found_.push_back(Identity{key, std::move(value)});
}

bool ParseCanonicalInt64(std::string_view text, int64_t* out) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value)) {
    return false;
  }
  // SimpleAtoi accepts "+1", " 1" and "01"; only the canonical form counts,
  // so a value such as "007" stays text and is never compared as a number.
  if (absl::StrCat(value) != text) return false;
  *out = value;
  return true;
}

}  // namespace dsar
