#include "workers/connectors/identity_match.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/connector_errors.h"
#include "model/identity.h"

namespace dsar {

IdentityMatcher::IdentityMatcher(const std::vector<Identity>& identities,
                                 std::string default_phone_region)
    : region_(std::move(default_phone_region)) {
  for (const Identity& identity : identities) {
    std::optional<std::string> canonical =
        Canonical(identity.key, identity.value);
    if (canonical.has_value()) {
      values_[identity.key].insert(*std::move(canonical));
    }
  }
}

const std::set<std::string>& IdentityMatcher::ValuesFor(
    const std::string& key) const {
  static const auto* const kNone = new std::set<std::string>();
  auto it = values_.find(key);
  return it == values_.end() ? *kNone : it->second;
}

std::optional<std::string> IdentityMatcher::Canonical(
    std::string_view key, std::string_view value) const {
  absl::StatusOr<std::string> canonical =
      NormalizeIdentityValue(key, value, region_);
  if (!canonical.ok()) return std::nullopt;
  return *std::move(canonical);
}

bool IdentityMatcher::Matches(const std::string& key,
                              std::string_view value) const {
  auto it = values_.find(key);
  if (it == values_.end()) return false;
  std::optional<std::string> canonical = Canonical(key, value);
  return canonical.has_value() && it->second.count(*canonical) > 0;
}

DiscoveredIdentities::DiscoveredIdentities(const std::vector<Identity>& given,
                                           const IdentityMatcher& matcher)
    : matcher_(matcher) {
  for (const Identity& identity : given) {
    std::optional<std::string> canonical =
        matcher_.Canonical(identity.key, identity.value);
    seen_.emplace(identity.key, canonical.value_or(identity.value));
  }
}

void DiscoveredIdentities::Add(const std::string& key, std::string_view value) {
  std::optional<std::string> canonical = matcher_.Canonical(key, value);
  if (!canonical.has_value()) return;
  if (!seen_.emplace(key, *canonical).second) return;
  found_.push_back(Identity{key, *std::move(canonical)});
}

void IdentityConflictDetector::AddRecord(
    const std::set<std::string>& matched_keys) {
  keys_.insert(matched_keys.begin(), matched_keys.end());
  for (const std::string& a : matched_keys) {
    for (const std::string& b : matched_keys) {
      if (a < b) shared_.emplace(a, b);
    }
  }
}

absl::Status IdentityConflictDetector::Check(
    const std::string& store, const std::string& collection) const {
  for (const std::string& a : keys_) {
    for (const std::string& b : keys_) {
      if (a < b && shared_.count({a, b}) == 0) {
        return WithErrorName(
            absl::FailedPreconditionError(absl::StrCat(
                "store ", store, ": collection ", collection,
                ": the subject's identities match different records (", a,
                " matches some, ", b,
                " others); refusing to act on an ambiguous subject, nothing "
                "was read or changed")),
            kErrorIdentityConflict);
      }
    }
  }
  return absl::OkStatus();
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

Identity PlannerProbeIdentity(const std::string& key) {
  if (key == kEmailKey) return {key, "probe@example.invalid"};
  if (key == kPhoneKey) return {key, "+14155550100"};
  return {key, "1"};
}

}  // namespace dsar
