#ifndef DSAR_ENGINE_IDENTITY_REACH_H_
#define DSAR_ENGINE_IDENTITY_REACH_H_

// Which identity kinds each store of a request can be searched with: the
// kinds the subject gave that the store matches, plus the kinds it receives
// from the stores it takes identities from (identities_from; a store's
// discovery yields every identity kind its collections hold). A store with
// none cannot be searched, so a request that includes it could never say
// truthfully that it erased or exported everything.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "inventory/inventory.h"

namespace dsar {

// Store name -> identity kinds ("email", "user_id", ...) it will be searched
// with, for every store in `scope` (stores outside `scope` supply nothing).
// REQUIRES: every name in `scope` is in `inventory`.
std::map<std::string, std::set<std::string>> SearchableIdentityKinds(
    const Inventory& inventory, const std::vector<std::string>& scope,
    const std::set<std::string>& given_kinds);

// OK when every store in `scope` can be searched; INVALID_ARGUMENT naming
// the first store that cannot, the kinds it matches and where they could
// come from otherwise.
absl::Status CheckEveryStoreReachable(const Inventory& inventory,
                                      const std::vector<std::string>& scope,
                                      const std::set<std::string>& given_kinds);

// For dsard's start-up: one line per (store, identity kind) pair where a
// request giving only that kind of identity, over every store, could not
// search the store. Empty when every store is reachable from every kind.
std::vector<std::string> UnreachableStoreWarnings(const Inventory& inventory);

}  // namespace dsar

#endif  // DSAR_ENGINE_IDENTITY_REACH_H_
