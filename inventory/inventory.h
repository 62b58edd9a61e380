#ifndef DSAR_INVENTORY_INVENTORY_H_
#define DSAR_INVENTORY_INVENTORY_H_

// The data inventory: every store that may hold a subject's personal data,
// how to find the subject there, and in which order stores are processed.
// Loaded from YAML (docs/inventory.md describes the format); the coordinator
// and every worker load the same file.

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/field_types.h"

namespace dsar {

// A table (SQLite) or the record stream of a log file (JSON lines).
struct CollectionSpec {
  std::string name;
  // Identity key ("email", "user_id", "phone", or a custom type such as
  // "customer_number") -> column/field holding it. At least one entry.
  std::map<std::string, std::string> identity_fields;
  // PII field -> category ("contact", "identity", "online_identifiers", ...).
  std::map<std::string, std::string> pii_fields;
  // Identity keys ("email", "phone") whose field holds values already in
  // canonical form (model/identity.h: emails lowercase, phones E.164), so a
  // lookup compares the field as it is and can use its plain index. For the
  // others a SQLite lookup goes through an expression (docs/inventory.md).
  std::set<std::string> canonical_identities;
  // Field -> declared type of its values, which a rectified value must
  // satisfy (model/field_types.h). Optional; see FieldTypeOf for defaults.
  std::map<std::string, FieldType> field_types;
  // Processing flag -> field set to true when the subject exercises it:
  // "restriction" (GDPR Art. 18) and "objection" (Art. 21). Optional.
  std::map<std::string, std::string> processing_flags;
};

// The declared type of `field` in `collection`: its field_types entry; else
// email or phone when it is the identity field of that key; else text.
FieldType FieldTypeOf(const CollectionSpec& collection,
                      const std::string& field);

// True for the processing flag names a collection may declare:
// "restriction" and "objection".
bool IsProcessingFlagName(std::string_view name);

// How to reach a service that speaks OpenDSR 2.0 as a processor
// (docs/opendsr.md). Paths are absolute (resolved like a store's path).
struct OpenDsrSpec {
  // "https://host[:port]/v1": the spec puts the major version in the URL;
  // /discovery, /requests and /requests/{id} are below it.
  std::string url;
  // The processor's OpenDSR domain: X-OpenDSR-Processor-Domain must equal
  // it and the signing certificate's SAN must name it.
  std::string processor_domain;
  // CA certificates (PEM) the processor's signing certificate must chain to.
  std::string signing_ca_file;
  // CA certificates (PEM) for the service's HTTPS certificate; empty: the
  // system's trust store.
  std::string tls_ca_file;
  // Client certificate and key (PEM) for mutual TLS; both or neither.
  std::string client_cert_file;
  std::string client_key_file;
  // How often a pending request's status is asked for.
  int poll_interval_ms = 5000;
  // The gateway's public callback URL sent as status_callback_urls; empty:
  // no callbacks, polling only.
  std::string status_callback_url;
};

struct StoreSpec {
  std::string name;  // Unique; [a-z0-9_-]+.
  std::string kind;  // "sqlite", "jsonl" or "opendsr".
  // Absolute (resolved against the inventory's directory); for "opendsr"
  // the service's base URL (opendsr.url).
  std::string path;
  std::string purpose;
  std::string legal_basis;
  std::vector<std::string> recipients;
  std::string retention;
  std::string source;
  // For "sqlite": one entry per table. For "jsonl": exactly one entry, whose
  // name is the store's name unless given.
  std::vector<CollectionSpec> collections;
  // Stores whose discovered identities this store needs (it runs after them).
  std::vector<std::string> identities_from;
  // Stores that must be erased before this one.
  std::vector<std::string> erase_after;
  // The inventory's default_phone_region, copied here so that a connector
  // needs only its store to normalise phone numbers.
  std::string default_phone_region;
  // For "opendsr": how to reach the service. Its one collection (named as
  // the store) maps identity keys to OpenDSR identity types.
  OpenDsrSpec opendsr;
  // Executor group (seed 001): stores of one group are erased one after the
  // other in file order; the loader adds each one's predecessor in the group
  // to its erase_after. Empty: no group.
  std::string group;
};

class Inventory {
 public:
  // Parses and validates. `base_dir` resolves relative store paths.
  // INVALID_ARGUMENT names the offending entry and field, e.g.
  // `stores[2] ("orders").erase_after: unknown store "invoices"`; cycles in
  // identities_from or erase_after are rejected with the stores involved.
  static absl::StatusOr<Inventory> Parse(std::string_view yaml,
                                         const std::string& base_dir);
  // Reads `path` and parses it with base_dir = directory of `path`.
  static absl::StatusOr<Inventory> LoadFile(const std::string& path);

  // Stores in file order.
  const std::vector<StoreSpec>& stores() const { return stores_; }
  // nullptr when no store has that name.
  const StoreSpec* Find(std::string_view name) const;
  // The organisation named in the file (the controller), may be empty.
  const std::string& controller() const { return controller_; }
  // ISO 3166-1 alpha-2 region ("GB") in which phone numbers written without
  // a country code are read, at intake and in the stores; empty when not
  // set (then such numbers are refused). See NormalizeIdentityValue.
  const std::string& default_phone_region() const {
    return default_phone_region_;
  }

 private:
  std::vector<StoreSpec> stores_;
  std::string controller_;
  std::string default_phone_region_;
};

}  // namespace dsar

#endif  // DSAR_INVENTORY_INVENTORY_H_
