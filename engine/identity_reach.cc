#include "engine/identity_reach.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dsar {
namespace {

std::set<std::string> KindsOf(const StoreSpec& store) {
  std::set<std::string> kinds;
  for (const CollectionSpec& collection : store.collections) {
    for (const auto& [kind, field] : collection.identity_fields) {
      kinds.insert(kind);
    }
  }
  return kinds;
}

}  // namespace

std::map<std::string, std::set<std::string>> SearchableIdentityKinds(
    const Inventory& inventory, const std::vector<std::string>& scope,
    const std::set<std::string>& given_kinds) {
  std::map<std::string, std::set<std::string>> result;
  std::set<std::string> in_scope(scope.begin(), scope.end());
  // identities_from has no cycles (the inventory rejects them), so the
  // recursion ends; each store is computed once.
  std::function<const std::set<std::string>&(const StoreSpec&)> reach =
      [&](const StoreSpec& store) -> const std::set<std::string>& {
    auto found = result.find(store.name);
    if (found != result.end()) return found->second;
    std::set<std::string> own = KindsOf(store);
    std::set<std::string> kinds;
    for (const std::string& kind : own) {
      if (given_kinds.count(kind) > 0) kinds.insert(kind);
    }
    for (const std::string& supplier_name : store.identities_from) {
      const StoreSpec* supplier = inventory.Find(supplier_name);
      if (supplier == nullptr || in_scope.count(supplier_name) == 0) continue;
      if (reach(*supplier).empty()) continue;
      for (const std::string& kind : KindsOf(*supplier)) {
        if (own.count(kind) > 0) kinds.insert(kind);
      }
    }
    return result[store.name] = std::move(kinds);
  };
  for (const std::string& name : scope) {
    if (const StoreSpec* store = inventory.Find(name)) reach(*store);
  }
  for (auto it = result.begin(); it != result.end();) {
    it = in_scope.count(it->first) > 0 ? std::next(it) : result.erase(it);
  }
  return result;
}

absl::Status CheckEveryStoreReachable(
    const Inventory& inventory, const std::vector<std::string>& scope,
    const std::set<std::string>& given_kinds) {
  std::map<std::string, std::set<std::string>> reach =
      SearchableIdentityKinds(inventory, scope, given_kinds);
  for (const std::string& name : scope) {
    if (!reach[name].empty()) continue;
    const StoreSpec* store = inventory.Find(name);
    std::set<std::string> kinds = KindsOf(*store);
    std::string message =
        absl::StrCat("stores: store \"", name,
                     "\" cannot be searched with the identities given (",
                     absl::StrJoin(given_kinds, ", "), "): it matches ",
                     absl::StrJoin(kinds, ", "));
    std::vector<std::string> suppliers;
    for (const std::string& supplier : store->identities_from) {
      if (std::find(scope.begin(), scope.end(), supplier) == scope.end()) {
        suppliers.push_back(supplier);
      }
    }
    if (!suppliers.empty()) {
      absl::StrAppend(&message, ", which ", absl::StrJoin(suppliers, ", "),
                      " would supply: include ",
                      suppliers.size() == 1 ? "it" : "them",
                      " in the stores, or give one of those identities");
    } else {
      absl::StrAppend(&message, "; give one of those identities");
    }
    return absl::InvalidArgumentError(message);
  }
  return absl::OkStatus();
}

std::vector<std::string> UnreachableStoreWarnings(const Inventory& inventory) {
  std::vector<std::string> all;
  std::set<std::string> every_kind;
  for (const StoreSpec& store : inventory.stores()) {
    all.push_back(store.name);
    std::set<std::string> kinds = KindsOf(store);
    every_kind.insert(kinds.begin(), kinds.end());
  }
  std::vector<std::string> warnings;
  for (const std::string& kind : every_kind) {
    std::map<std::string, std::set<std::string>> reach =
        SearchableIdentityKinds(inventory, all, {kind});
    for (const StoreSpec& store : inventory.stores()) {
      if (!reach[store.name].empty()) continue;
      warnings.push_back(absl::StrCat(
          "store \"", store.name,
          "\" cannot be reached from a request that "
          "gives only a ",
          kind, " (it matches ", absl::StrJoin(KindsOf(store), ", "),
          "); such requests will be refused: add identities_from"));
    }
  }
  return warnings;
}

}  // namespace dsar
