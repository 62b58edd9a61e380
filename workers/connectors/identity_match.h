#ifndef DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_
#define DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_

// Identity comparison shared by the connectors: which given identities a
// record's field values match, and which new identities a record yields.
// Values on both sides go through the one normaliser
// (model/identity.h: NormalizeIdentityValue), so a stored "+44 7700 454764"
// equals a given "+447700454764" and "Jane@Example.com" equals
// "jane@example.com".

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "workers/connectors/connector.h"

namespace dsar {

// The subject's identities, grouped by key, in canonical form.
class IdentityMatcher {
 public:
  // Identities the normaliser refuses (an unparseable phone) match nothing.
  // `default_phone_region` reads phone numbers without a country code, given
  // and stored alike (StoreSpec::default_phone_region).
  IdentityMatcher(const std::vector<Identity>& identities,
                  std::string default_phone_region);

  // The distinct canonical values given for `key`; empty when none.
  const std::set<std::string>& ValuesFor(const std::string& key) const;

  // The canonical form of a stored `value` of `key`; nullopt when the
  // normaliser refuses it (empty, or a phone it cannot parse).
  std::optional<std::string> Canonical(std::string_view key,
                                       std::string_view value) const;

  // True when `value` (as stored in a record) equals a given value of `key`
  // once both are canonical.
  bool Matches(const std::string& key, std::string_view value) const;

  bool empty() const { return values_.empty(); }
  const std::string& default_phone_region() const { return region_; }

 private:
  std::map<std::string, std::set<std::string>> values_;
  std::string region_;
};

// A well-formed value of identity `key` that no one has ("probe@
// example.invalid", a reserved phone number, "1" for other keys): lets a
// store's query planner see the lookup the connector writes for that key
// (inventory check) without the value mattering.
Identity PlannerProbeIdentity(const std::string& key);

// Collects identities read from matched records, in canonical form, skipping
// the ones the caller passed in and duplicates. Keeps the order in which
// they were first seen. Values the normaliser refuses are skipped.
class DiscoveredIdentities {
 public:
  DiscoveredIdentities(const std::vector<Identity>& given,
                       const IdentityMatcher& matcher);

  void Add(const std::string& key, std::string_view value);
  std::vector<Identity> Take() { return std::move(found_); }

 private:
  const IdentityMatcher& matcher_;
  std::set<std::pair<std::string, std::string>> seen_;
  std::vector<Identity> found_;
};

// Detects identities that point at different records: in one collection,
// the records matched through one identity key and those matched through
// another are both non-empty and share no record (the email of one person
// and the user id of another). Acting on the union would export or erase
// someone else's data, so every operation refuses.
class IdentityConflictDetector {
 public:
  // Adds one matched record: the identity keys through which it matched.
  void AddRecord(const std::set<std::string>& matched_keys);

  // FAILED_PRECONDITION carrying the error name Identity.Conflict
  // (model/connector_errors.h) when the records added so far conflict; the
  // message names the store, the collection and the identity keys, never a
  // value or a record. OK otherwise.
  absl::Status Check(const std::string& store,
                     const std::string& collection) const;

 private:
  std::set<std::string> keys_;
  std::set<std::pair<std::string, std::string>> shared_;  // Keys seen together.
};

// True when `text` is the canonical decimal form of an int64 ("42", "-7";
// not "042", "+1" or "4.0"), storing the number in `*out`.
bool ParseCanonicalInt64(std::string_view text, int64_t* out);

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_
