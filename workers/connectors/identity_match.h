#ifndef DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_
#define DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_

// Identity comparison shared by the connectors: which given identities a
// record's field values match, and which new identities a record yields.

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workers/connectors/connector.h"

namespace dsar {

// True for identity keys whose values compare ignoring ASCII case ("email").
bool IsCaseInsensitiveIdentityKey(std::string_view key);

// The form in which values of `key` are compared: emails lowercased (ASCII),
// everything else as given.
std::string NormalizeIdentityValue(std::string_view key,
                                   std::string_view value);

// The subject's identities, grouped by key, normalized.
class IdentityMatcher {
 public:
  explicit IdentityMatcher(const std::vector<Identity>& identities);

  // The distinct normalized values given for `key`; empty when none.
  const std::set<std::string>& ValuesFor(const std::string& key) const;

  // True when `value` (as stored in a record) equals a given value of `key`.
  bool Matches(const std::string& key, std::string_view value) const;

  bool empty() const { return values_.empty(); }

 private:
  std::map<std::string, std::set<std::string>> values_;
};

// Collects identities read from matched records, skipping the ones the
// caller passed in and duplicates (both compared in normalized form). Keeps
// the order in which they were first seen.
class DiscoveredIdentities {
 public:
  explicit DiscoveredIdentities(const std::vector<Identity>& given);

  void Add(const std::string& key, std::string value);
  std::vector<Identity> Take() { return std::move(found_); }

 private:
  std::set<std::pair<std::string, std::string>> seen_;
  std::vector<Identity> found_;
};

// True when `text` is the canonical decimal form of an int64 ("42", "-7";
// not "042", "+1" or "4.0"), storing the number in `*out`.
bool ParseCanonicalInt64(std::string_view text, int64_t* out);

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_IDENTITY_MATCH_H_
