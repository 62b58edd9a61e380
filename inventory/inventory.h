#ifndef DSAR_INVENTORY_INVENTORY_H_
#define DSAR_INVENTORY_INVENTORY_H_

// The data inventory: every store that may hold a subject's personal data,
// how to find the subject there, and in which order stores are processed.
// Loaded from YAML (docs/inventory.md describes the format); the coordinator
// and every worker load the same file.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/field_types.h"

namespace dsar {

// How an erasure treats one field of a table that is masked rather than
// deleted (CollectionSpec::mask_on_erase; docs/inventory.md, "Masking").
enum class MaskStrategy {
  kNull,    // Set to NULL.
  kFixed,   // Set to FieldMask::text.
  kRandom,  // Set to 32 random lowercase hex digits.
  kHash,    // Set to HMAC-SHA256(masking key, value as text), lowercase hex.
  kKeep,    // Left as it is, for the legal reason in FieldMask::text.
};

struct FieldMask {
  MaskStrategy strategy = MaskStrategy::kNull;
  // kFixed: the value written. kKeep: the legal reason the field is kept
  // (e.g. "Tax law: HGB 257, 10 years"), shown to the subject as an
  // exemption. Empty otherwise.
  std::string text;
};

// How an audit (docs/audit-scan.md) reads a record's privacy status, and
// what counts as scrubbed in a record whose status says opted out or erased
// (CollectionSpec::privacy_status; docs/inventory.md, "Privacy status").
struct PrivacyStatusSpec {
  // The column or top-level JSON field holding the status. Not an identity
  // or PII field.
  std::string field;
  // Values meaning the subject opted out or was erased: such a record must
  // hold no unscrubbed personal data. Lowercase; a record's value is
  // compared ignoring case. At least one.
  std::set<std::string> opted_out;
  // Values meaning processing is restricted (GDPR Art. 18): the record may
  // keep its data. Lowercase, compared ignoring case; none in opted_out.
  std::set<std::string> restricted;
  // Placeholders that count as scrubbed besides empty, null and absent
  // ("REDACTED", "[deleted]"), compared exactly. The values the
  // collection's own masks write (fixed text; random and hash digests)
  // count as scrubbed too without being listed here.
  std::set<std::string> scrubbed;
  // True: a value of 64 or 32 lowercase hex digits (an HMAC-SHA256 or MD5
  // hex digest, as a pseudonymising job writes) counts as scrubbed.
  bool scrubbed_hashes = false;
};

// A table (SQLite, PostgreSQL) or the record stream of a log file (JSON
// lines).
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
  // Erasure: false (the default) deletes the subject's records; true keeps
  // them and masks their fields as `masks` says instead (tables only).
  bool mask_on_erase = false;
  // Field -> how an erasure masks it. When mask_on_erase, lists every
  // identity and PII field of the collection (and nothing else).
  std::map<std::string, FieldMask> masks;
  // The privacy status an audit checks (OPT_OUT_VIOLATION); nullopt: the
  // collection declares none and is not checked for it.
  std::optional<PrivacyStatusSpec> privacy_status;
  // The column or top-level field whose value names a record in audit
  // findings; empty: the row's rowid (SQLite), ctid (PostgreSQL) or line
  // number (JSON lines). Not a PII field nor the email or phone identity
  // field, so that findings never carry a personal value.
  std::string record_key;
};

// The declared type of `field` in `collection`: its field_types entry; else
// email or phone when it is the identity field of that key; else text.
FieldType FieldTypeOf(const CollectionSpec& collection,
                      const std::string& field);

// True for the processing flag names a collection may declare:
// "restriction" and "objection".
bool IsProcessingFlagName(std::string_view name);

// Where a "postgres" store's server is and how to log in. Passed to libpq
// as connection parameters (never spliced into a connection string). The
// inventory never holds the password itself: it names a file or an
// environment variable to read it from when connecting.
struct PostgresConnection {
  std::string host;  // Name, address, or a Unix socket directory ("/...").
  std::string port;  // Decimal; empty: libpq's default (5432).
  std::string dbname;
  std::string user;
  std::string password_file;  // Absolute; its first line is the password.
  std::string password_env;   // Name of the environment variable holding it.
  // libpq's sslmode: disable, allow, prefer, require, verify-ca or
  // verify-full (the default, except for a socket directory: disable).
  std::string sslmode;
  std::string sslrootcert;  // Absolute; CA certificates for verify-*.
};

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
  // "sqlite", "jsonl", "postgres", "opendsr", "manual" or "null".
  std::string kind;
  // Absolute (resolved against the inventory's directory); empty for
  // "postgres", "manual" and "null"; for "opendsr" the service's base URL
  // (opendsr.url).
  std::string path;
  // For "postgres": the server, and the schema holding its tables
  // ("public" unless given).
  PostgresConnection connection;
  std::string schema;
  std::string purpose;
  std::string legal_basis;
  std::vector<std::string> recipients;
  std::string retention;
  std::string source;
  // For "sqlite": one entry per table. For "jsonl": exactly one entry, whose
  // name is the store's name unless given. For "null": one entry named as
  // the store.
  std::vector<CollectionSpec> collections;
  // Stores whose discovered identities this store needs (it runs after them).
  std::vector<std::string> identities_from;
  // Stores that must be erased before this one.
  std::vector<std::string> erase_after;
  // The inventory's default_phone_region, copied here so that a connector
  // needs only its store to normalise phone numbers.
  std::string default_phone_region;
  // For "manual" (a system no connector reaches; docs/manual-stores.md):
  // who does the work, what they do, and how long they have from the moment
  // the step is ready (0: until the request's deadline; never past it). Its
  // one collection, named after the store, lists the identity kinds the
  // owner searches by as identity_fields {kind: kind}.
  std::string owner;
  std::string instructions;
  absl::Duration due_within = absl::ZeroDuration();
  // The inventory's masking_key_file (absolute), copied here like
  // default_phone_region: the key of the `hash` mask strategy. Empty when
  // not set.
  std::string masking_key_file;
  // For "opendsr": how to reach the service. Its one collection (named as
  // the store) maps identity keys to OpenDSR identity types.
  OpenDsrSpec opendsr;
  // Executor group (seed 001): stores of one group are erased one after the
  // other in file order; the loader adds each one's predecessor in the group
  // to its erase_after. Empty: no group.
  std::string group;
};

// True for a store worked by people instead of a connector.
inline bool IsManualStore(const StoreSpec& store) {
  return store.kind == "manual";
}

// True for a store that holds nothing (docs/inventory.md, "Null stores"):
// every task on it finds no record and changes nothing, at almost no cost.
// It stands in for a real store where the engine alone is measured
// (docs/BENCHMARKS.md); `inventory check` warns about each one.
inline bool IsNullStore(const StoreSpec& store) { return store.kind == "null"; }

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
