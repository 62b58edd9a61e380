#include "inventory/inventory.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "inventory/seed_import.h"
#include "model/identity.h"

namespace dsar {
namespace {

// Keys a store entry may hold; anything else is a typo worth reporting.
const std::set<std::string>& StoreKeys() {
  static const auto* keys = new std::set<std::string>{"name",
                                                      "kind",
                                                      "path",
                                                      "purpose",
                                                      "legal_basis",
                                                      "recipients",
                                                      "retention",
                                                      "source",
                                                      "tables",
                                                      "identity_fields",
                                                      "pii_fields",
                                                      "processing_flags",
                                                      "canonical_identities",
                                                      "field_types",
                                                      "identities_from",
                                                      "erase_after",
                                                      "connection",
                                                      "schema",
                                                      "erase",
                                                      "owner",
                                                      "instructions",
                                                      "due_within",
                                                      "identity_kinds",
                                                      "opendsr",
                                                      "group",
                                                      "privacy_status",
                                                      "record_key"};
  return *keys;
}

// Keys only a manual store has, and keys it must not have.
const std::set<std::string>& ManualOnlyKeys() {
  static const auto* keys = new std::set<std::string>{
      "owner", "instructions", "due_within", "identity_kinds"};
  return *keys;
}

const std::set<std::string>& TableKeys() {
  static const auto* keys = new std::set<std::string>{"name",
                                                      "identity_fields",
                                                      "pii_fields",
                                                      "processing_flags",
                                                      "canonical_identities",
                                                      "field_types",
                                                      "erase",
                                                      "privacy_status",
                                                      "record_key"};
  return *keys;
}

const std::set<std::string>& PrivacyStatusKeys() {
  static const auto* keys = new std::set<std::string>{
      "field", "opted_out", "restricted", "scrubbed", "scrubbed_hashes"};
  return *keys;
}

const std::set<std::string>& TopLevelKeys() {
  static const auto* keys = new std::set<std::string>{
      "controller", "default_phone_region", "masking_key_file", "stores"};
  return *keys;
}

// Keys of a postgres store's `connection`. "password" is refused with its
// own message (ParseConnection).
const std::set<std::string>& ConnectionKeys() {
  static const auto* keys = new std::set<std::string>{
      "host",          "port",         "dbname",  "user",
      "password_file", "password_env", "sslmode", "sslrootcert"};
  return *keys;
}

const std::set<std::string>& SslModes() {
  static const auto* modes = new std::set<std::string>{
      "disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
  return *modes;
}

const std::set<std::string>& EraseKeys() {
  static const auto* keys = new std::set<std::string>{"mode", "fields"};
  return *keys;
}

const std::set<std::string>& OpenDsrKeys() {
  static const auto* keys = new std::set<std::string>{"url",
                                                      "processor_domain",
                                                      "signing_ca",
                                                      "tls_ca",
                                                      "client_cert",
                                                      "client_key",
                                                      "poll_interval_ms",
                                                      "status_callback_url"};
  return *keys;
}

bool IsValidStoreName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string Quoted(const std::string& s) { return absl::StrCat("\"", s, "\""); }

absl::Status Invalid(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// Rejects keys of the map `node` that are not in `allowed`.
absl::Status CheckKeys(const YAML::Node& node,
                       const std::set<std::string>& allowed,
                       const std::string& where) {
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return Invalid(where, "keys must be strings");
    std::string key = entry.first.Scalar();
    if (allowed.count(key) == 0) {
      return Invalid(
          where, absl::StrCat("unknown key ", Quoted(key),
                              " (known: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// Reads an optional scalar string; absent or null leaves `out` unchanged.
absl::Status ReadString(const YAML::Node& parent, const char* key,
                        const std::string& where, std::string* out) {
  YAML::Node node = parent[key];
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsScalar()) {
    return Invalid(absl::StrCat(where, ".", key), "must be a string");
  }
  *out = node.Scalar();
  return absl::OkStatus();
}

absl::Status ReadStringList(const YAML::Node& parent, const char* key,
                            const std::string& where,
                            std::vector<std::string>* out) {
  YAML::Node node = parent[key];
  if (!node || node.IsNull()) return absl::OkStatus();
  std::string field = absl::StrCat(where, ".", key);
  if (!node.IsSequence()) return Invalid(field, "must be a list of strings");
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar() || node[i].Scalar().empty()) {
      return Invalid(absl::StrCat(field, "[", i, "]"),
                     "must be a non-empty string");
    }
    out->push_back(node[i].Scalar());
  }
  return absl::OkStatus();
}

absl::Status ReadStringMap(const YAML::Node& parent, const char* key,
                           const std::string& where,
                           std::map<std::string, std::string>* out) {
  YAML::Node node = parent[key];
  if (!node || node.IsNull()) return absl::OkStatus();
  std::string field = absl::StrCat(where, ".", key);
  if (!node.IsMap()) return Invalid(field, "must be a map of string to string");
  for (const auto& entry : node) {
    if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
      return Invalid(field, "keys must be non-empty strings");
    }
    const std::string& name = entry.first.Scalar();
    if (!entry.second.IsScalar() || entry.second.Scalar().empty()) {
      return Invalid(absl::StrCat(field, ".", name),
                     "must be a non-empty string");
    }
    if (!out->emplace(name, entry.second.Scalar()).second) {
      return Invalid(field, absl::StrCat("duplicate key ", Quoted(name)));
    }
  }
  return absl::OkStatus();
}

// One entry of erase.fields: `null` (or YAML null), `random`, `hash`,
// `{fixed: "text"}` or `{keep: "legal reason"}`.
absl::StatusOr<FieldMask> ParseFieldMask(const YAML::Node& node,
                                         const std::string& where) {
  const char* expected =
      "must be null, random, hash, {fixed: \"text\"} or "
      "{keep: \"legal reason\"}";
  if (node.IsNull()) return FieldMask{MaskStrategy::kNull, ""};
  if (node.IsScalar()) {
    const std::string& name = node.Scalar();
    if (name == "null") return FieldMask{MaskStrategy::kNull, ""};
    if (name == "random") return FieldMask{MaskStrategy::kRandom, ""};
    if (name == "hash") return FieldMask{MaskStrategy::kHash, ""};
    return Invalid(
        where, absl::StrCat("unknown strategy ", Quoted(name), ": ", expected));
  }
  if (!node.IsMap() || node.size() != 1) return Invalid(where, expected);
  const auto entry = *node.begin();
  if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
    return Invalid(where, expected);
  }
  const std::string& name = entry.first.Scalar();
  const std::string& text = entry.second.Scalar();
  if (name == "fixed") return FieldMask{MaskStrategy::kFixed, text};
  if (name == "keep") {
    if (text.empty()) {
      return Invalid(absl::StrCat(where, ".keep"),
                     "needs the legal reason the field is kept");
    }
    return FieldMask{MaskStrategy::kKeep, text};
  }
  return Invalid(
      where, absl::StrCat("unknown strategy ", Quoted(name), ": ", expected));
}

// `erase: {mode: delete | mask, fields: {field: strategy, ...}}`; absent
// means delete. What the fields must cover is checked by ValidateCollection.
absl::Status ParseErase(const YAML::Node& node, const std::string& where,
                        CollectionSpec* collection) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return Invalid(where, "must be a map (mode, fields)");
  RETURN_IF_ERROR(CheckKeys(node, EraseKeys(), where));
  std::string mode = "delete";
  RETURN_IF_ERROR(ReadString(node, "mode", where, &mode));
  if (mode != "delete" && mode != "mask") {
    return Invalid(where + ".mode", absl::StrCat("unknown mode ", Quoted(mode),
                                                 " (known: delete, mask)"));
  }
  YAML::Node fields = node["fields"];
  bool has_fields = fields && !fields.IsNull();
  if (mode == "delete") {
    if (has_fields) {
      return Invalid(where + ".fields", "only mode: mask masks fields");
    }
    return absl::OkStatus();
  }
  if (!has_fields || !fields.IsMap() || fields.size() == 0) {
    return Invalid(where + ".fields",
                   "mode: mask needs a map of field to strategy");
  }
  collection->mask_on_erase = true;
  for (const auto& entry : fields) {
    if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
      return Invalid(where + ".fields", "keys must be non-empty strings");
    }
    const std::string& field = entry.first.Scalar();
    ASSIGN_OR_RETURN(
        FieldMask mask,
        ParseFieldMask(entry.second, absl::StrCat(where, ".fields.", field)));
    if (!collection->masks.emplace(field, std::move(mask)).second) {
      return Invalid(where + ".fields",
                     absl::StrCat("duplicate key ", Quoted(field)));
    }
  }
  return absl::OkStatus();
}

// `privacy_status:` of a collection: {field, opted_out, restricted,
// scrubbed, scrubbed_hashes}; absent or null leaves `out` unset.
absl::Status ParsePrivacyStatus(const YAML::Node& parent,
                                const std::string& parent_where,
                                std::optional<PrivacyStatusSpec>* out) {
  YAML::Node node = parent["privacy_status"];
  if (!node || node.IsNull()) return absl::OkStatus();
  std::string where = parent_where + ".privacy_status";
  if (!node.IsMap()) {
    return Invalid(where,
                   "must be a map (field, opted_out, restricted, "
                   "scrubbed, scrubbed_hashes)");
  }
  RETURN_IF_ERROR(CheckKeys(node, PrivacyStatusKeys(), where));
  PrivacyStatusSpec spec;
  RETURN_IF_ERROR(ReadString(node, "field", where, &spec.field));
  if (spec.field.empty()) return Invalid(where + ".field", "missing");
  auto read_lower = [&](const char* key,
                        std::set<std::string>* values) -> absl::Status {
    std::vector<std::string> list;
    RETURN_IF_ERROR(ReadStringList(node, key, where, &list));
    for (const std::string& value : list) {
      if (!values->insert(absl::AsciiStrToLower(value)).second) {
        return Invalid(absl::StrCat(where, ".", key),
                       absl::StrCat("duplicate value ", Quoted(value),
                                    " (values compare ignoring case)"));
      }
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(read_lower("opted_out", &spec.opted_out));
  if (spec.opted_out.empty()) {
    return Invalid(where + ".opted_out",
                   "missing (the status values meaning opted out or erased, "
                   "e.g. [opt_out])");
  }
  RETURN_IF_ERROR(read_lower("restricted", &spec.restricted));
  for (const std::string& value : spec.restricted) {
    if (spec.opted_out.count(value) > 0) {
      return Invalid(where + ".restricted",
                     absl::StrCat(Quoted(value), " is in opted_out too"));
    }
  }
  std::vector<std::string> scrubbed;
  RETURN_IF_ERROR(ReadStringList(node, "scrubbed", where, &scrubbed));
  spec.scrubbed.insert(scrubbed.begin(), scrubbed.end());
  YAML::Node hashes = node["scrubbed_hashes"];
  if (hashes && !hashes.IsNull()) {
    if (!hashes.IsScalar() ||
        (hashes.Scalar() != "true" && hashes.Scalar() != "false")) {
      return Invalid(where + ".scrubbed_hashes", "must be true or false");
    }
    spec.scrubbed_hashes = hashes.Scalar() == "true";
  }
  *out = std::move(spec);
  return absl::OkStatus();
}

absl::StatusOr<CollectionSpec> ParseCollection(const YAML::Node& node,
                                               const std::string& where) {
  CollectionSpec collection;
  RETURN_IF_ERROR(ReadString(node, "name", where, &collection.name));
  RETURN_IF_ERROR(ReadStringMap(node, "identity_fields", where,
                                &collection.identity_fields));
  RETURN_IF_ERROR(
      ReadStringMap(node, "pii_fields", where, &collection.pii_fields));
  RETURN_IF_ERROR(ReadStringMap(node, "processing_flags", where,
                                &collection.processing_flags));
  std::map<std::string, std::string> types;
  RETURN_IF_ERROR(ReadStringMap(node, "field_types", where, &types));
  for (const auto& [field, name] : types) {
    std::optional<FieldType> type = ParseFieldType(name);
    if (!type.has_value()) {
      return Invalid(absl::StrCat(where, ".field_types.", field),
                     absl::StrCat("unknown type ", Quoted(name),
                                  " (known: ", KnownFieldTypeNames(), ")"));
    }
    collection.field_types[field] = *type;
  }
  std::vector<std::string> canonical;
  RETURN_IF_ERROR(
      ReadStringList(node, "canonical_identities", where, &canonical));
  collection.canonical_identities.insert(canonical.begin(), canonical.end());
  // Named here already, unlike the fields above, where the message of a
  // table without a name would otherwise be ambiguous.
  std::string named =
      collection.name.empty()
          ? where
          : absl::StrCat(where, " (", Quoted(collection.name), ")");
  RETURN_IF_ERROR(ParseErase(node["erase"], named + ".erase", &collection));
  RETURN_IF_ERROR(ParsePrivacyStatus(node, named, &collection.privacy_status));
  RETURN_IF_ERROR(
      ReadString(node, "record_key", named, &collection.record_key));
  return collection;
}

// A masked table keeps its rows, so nothing may be left as it was by
// omission: every identity and PII field has a strategy, and only those do.
// `random` and `hash` change a value every time they run, so they are
// allowed only where every identity field is masked (not kept): a masked
// row then no longer matches the subject, and a second erasure finds
// nothing to mask again (docs/inventory.md, "Masking").
absl::Status ValidateMasks(const CollectionSpec& collection,
                           const std::string& where) {
  if (!collection.mask_on_erase) return absl::OkStatus();
  std::set<std::string> identity_columns;
  for (const auto& [key, field] : collection.identity_fields) {
    identity_columns.insert(field);
  }
  std::set<std::string> covered;
  for (const auto& [field, category] : collection.pii_fields) {
    covered.insert(field);
  }
  covered.insert(identity_columns.begin(), identity_columns.end());
  for (const std::string& field : covered) {
    if (collection.masks.count(field) == 0) {
      return Invalid(absl::StrCat(where, ".fields"),
                     absl::StrCat("no strategy for ", Quoted(field),
                                  " (every identity and PII field needs one; "
                                  "keep it with {keep: \"reason\"})"));
    }
  }
  bool identity_kept = false;
  for (const std::string& field : identity_columns) {
    if (collection.masks.at(field).strategy == MaskStrategy::kKeep) {
      identity_kept = true;
    }
  }
  for (const auto& [field, mask] : collection.masks) {
    std::string field_where = absl::StrCat(where, ".fields.", field);
    if (covered.count(field) == 0) {
      return Invalid(field_where,
                     "not one of the collection's pii_fields or "
                     "identity_fields");
    }
    if (identity_kept && (mask.strategy == MaskStrategy::kRandom ||
                          mask.strategy == MaskStrategy::kHash)) {
      return Invalid(field_where,
                     "random and hash need every identity field masked, not "
                     "kept (else a second erasure would mask the value "
                     "again); use null or {fixed: ...}");
    }
  }
  return absl::OkStatus();
}

// The privacy status field is a field of its own, and the record key holds
// no personal value (both would otherwise end up in audit findings or make
// every opted-out record a violation).
absl::Status ValidateAuditFields(const CollectionSpec& collection,
                                 const std::string& where) {
  auto identity_key_of = [&](const std::string& field) -> std::string {
    for (const auto& [key, identity_field] : collection.identity_fields) {
      if (identity_field == field) return key;
    }
    return "";
  };
  if (collection.privacy_status.has_value()) {
    const std::string& field = collection.privacy_status->field;
    std::string field_where = where + ".privacy_status.field";
    if (collection.pii_fields.count(field) > 0) {
      return Invalid(field_where, absl::StrCat(Quoted(field),
                                               " is a PII field; the status "
                                               "needs a field of its own"));
    }
    std::string key = identity_key_of(field);
    if (!key.empty()) {
      return Invalid(
          field_where,
          absl::StrCat(Quoted(field), " is the identity field of ", Quoted(key),
                       "; the status needs a field of its own"));
    }
  }
  const std::string& record_key = collection.record_key;
  if (!record_key.empty()) {
    std::string key = identity_key_of(record_key);
    if (collection.pii_fields.count(record_key) > 0 || key == kEmailKey ||
        key == kPhoneKey) {
      return Invalid(where + ".record_key",
                     absl::StrCat(Quoted(record_key),
                                  " holds personal data, which audit findings "
                                  "never carry; name a surrogate key (an id "
                                  "column) or leave it out"));
    }
  }
  return absl::OkStatus();
}

// Checks what ParseCollection cannot: it runs once `where` names the
// collection.
absl::Status ValidateCollection(const CollectionSpec& collection,
                                const std::string& where) {
  if (collection.identity_fields.empty()) {
    return Invalid(where + ".identity_fields",
                   "missing (a collection needs at least one)");
  }
  for (const std::string& key : collection.canonical_identities) {
    std::string key_where = absl::StrCat(where, ".canonical_identities");
    if (key != "email" && key != "phone") {
      return Invalid(key_where,
                     absl::StrCat(Quoted(key),
                                  ": only email and phone have a canonical "
                                  "form to declare (others compare exactly)"));
    }
    if (collection.identity_fields.count(key) == 0) {
      return Invalid(key_where,
                     absl::StrCat(Quoted(key), " is not in identity_fields"));
    }
  }
  for (const auto& [field, type] : collection.field_types) {
    bool named = collection.pii_fields.count(field) > 0;
    for (const auto& [key, identity_field] : collection.identity_fields) {
      named = named || identity_field == field;
    }
    if (!named) {
      return Invalid(absl::StrCat(where, ".field_types.", field),
                     "not one of the collection's pii_fields or "
                     "identity_fields");
    }
  }
  RETURN_IF_ERROR(ValidateMasks(collection, where + ".erase"));
  RETURN_IF_ERROR(ValidateAuditFields(collection, where));
  std::map<std::string, std::string> flag_of_field;
  for (const auto& [flag, field] : collection.processing_flags) {
    std::string flag_where = absl::StrCat(where, ".processing_flags");
    if (!IsProcessingFlagName(flag)) {
      return Invalid(flag_where,
                     absl::StrCat("unknown flag ", Quoted(flag),
                                  " (known: objection, restriction)"));
    }
    auto [other, inserted] = flag_of_field.emplace(field, flag);
    if (!inserted) {
      return Invalid(absl::StrCat(flag_where, ".", flag),
                     absl::StrCat("field ", Quoted(field),
                                  " is already the field of flag ",
                                  Quoted(other->second)));
    }
    for (const auto& [key, identity_field] : collection.identity_fields) {
      if (identity_field == field) {
        return Invalid(
            absl::StrCat(flag_where, ".", flag),
            absl::StrCat("field ", Quoted(field), " is the identity field of ",
                         Quoted(key), "; a flag needs a field of its own"));
      }
    }
  }
  return absl::OkStatus();
}

// How deep and how wide RefuseFillInPlaceholders walks. A real inventory
// nests about seven levels and holds a few thousand nodes; YAML aliases can
// make a cycle (`&a {x: [*a]}`) or multiply a small file into millions of
// nodes, which the walk must refuse instead of following.
constexpr int kMaxInventoryDepth = 32;
constexpr int kMaxInventoryNodes = 200000;

// INVALID_ARGUMENT naming the first value still "<fill in>" (left by
// `dsarctl inventory import`, inventory/seed_import.h): an imported
// inventory runs only once completed. `nodes_left` is the walk's budget.
absl::Status RefuseFillInPlaceholders(const YAML::Node& node,
                                      const std::string& where, int depth,
                                      int& nodes_left) {
  if (depth > kMaxInventoryDepth) {
    return Invalid(
        where, absl::StrCat("nests deeper than ", kMaxInventoryDepth,
                            " levels (is an alias inside its own anchor?)"));
  }
  if (--nodes_left < 0) {
    return Invalid("inventory",
                   absl::StrCat("more than ", kMaxInventoryNodes,
                                " values once its aliases are expanded"));
  }
  if (node.IsScalar()) {
    if (node.Scalar() == kFillIn) {
      return Invalid(where,
                     "still \"<fill in>\" (left by dsarctl inventory "
                     "import; fill it in)");
    }
    return absl::OkStatus();
  }
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      RETURN_IF_ERROR(RefuseFillInPlaceholders(
          node[i], absl::StrCat(where, "[", i, "]"), depth + 1, nodes_left));
    }
  } else if (node.IsMap()) {
    for (const auto& entry : node) {
      std::string key =
          entry.first.IsScalar() ? entry.first.Scalar() : std::string("?");
      if (key == kFillIn) {
        return Invalid(where, "a key is still \"<fill in>\"");
      }
      RETURN_IF_ERROR(RefuseFillInPlaceholders(
          entry.second, absl::StrCat(where, ".", key), depth + 1, nodes_left));
    }
  }
  return absl::OkStatus();
}

// `path` made absolute against `base_dir` (when relative and base_dir is
// set), normalised.
std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  std::filesystem::path resolved(path);
  if (resolved.is_relative() && !base_dir.empty()) {
    resolved = std::filesystem::path(base_dir) / resolved;
  }
  return resolved.lexically_normal().string();
}

// The opendsr block of an "opendsr" store; `where` names the store.
absl::StatusOr<OpenDsrSpec> ParseOpenDsr(const YAML::Node& store_node,
                                         const std::string& store_where,
                                         const std::string& base_dir) {
  const std::string where = store_where + ".opendsr";
  YAML::Node node = store_node["opendsr"];
  if (!node || node.IsNull()) {
    return Invalid(where,
                   "missing (an opendsr store needs its url, "
                   "processor_domain and signing_ca)");
  }
  if (!node.IsMap()) return Invalid(where, "must be a map");
  RETURN_IF_ERROR(CheckKeys(node, OpenDsrKeys(), where));
  OpenDsrSpec spec;
  RETURN_IF_ERROR(ReadString(node, "url", where, &spec.url));
  RETURN_IF_ERROR(
      ReadString(node, "processor_domain", where, &spec.processor_domain));
  RETURN_IF_ERROR(ReadString(node, "signing_ca", where, &spec.signing_ca_file));
  RETURN_IF_ERROR(ReadString(node, "tls_ca", where, &spec.tls_ca_file));
  RETURN_IF_ERROR(
      ReadString(node, "client_cert", where, &spec.client_cert_file));
  RETURN_IF_ERROR(ReadString(node, "client_key", where, &spec.client_key_file));
  RETURN_IF_ERROR(ReadString(node, "status_callback_url", where,
                             &spec.status_callback_url));
  std::string interval;
  RETURN_IF_ERROR(ReadString(node, "poll_interval_ms", where, &interval));
  if (!interval.empty()) {
    int value = 0;
    if (!absl::SimpleAtoi(interval, &value) || value < 10 ||
        value > 3600 * 1000) {
      return Invalid(where + ".poll_interval_ms",
                     "must be a whole number of milliseconds from 10 to "
                     "3600000");
    }
    spec.poll_interval_ms = value;
  }
  // The spec wants TLS and the major version at the start of the path.
  if (!absl::StartsWith(spec.url, "https://")) {
    return Invalid(where + ".url",
                   "missing or not an https:// URL (e.g. "
                   "https://opendsr.example.com/v1)");
  }
  size_t path = spec.url.find('/', 8);
  if (path == std::string::npos || spec.url.size() < path + 3 ||
      spec.url[path + 1] != 'v' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(spec.url[path + 2]))) {
    return Invalid(where + ".url",
                   "must name the API's major version, e.g. "
                   "https://opendsr.example.com/v1");
  }
  while (!spec.url.empty() && spec.url.back() == '/') spec.url.pop_back();
  if (spec.processor_domain.empty()) {
    return Invalid(where + ".processor_domain", "missing");
  }
  if (spec.signing_ca_file.empty()) {
    return Invalid(where + ".signing_ca",
                   "missing (the CA the processor's signing certificate must "
                   "chain to)");
  }
  spec.signing_ca_file = ResolvePath(spec.signing_ca_file, base_dir);
  if (!spec.tls_ca_file.empty()) {
    spec.tls_ca_file = ResolvePath(spec.tls_ca_file, base_dir);
  }
  if (spec.client_cert_file.empty() != spec.client_key_file.empty()) {
    return Invalid(where, "give both client_cert and client_key, or neither");
  }
  if (!spec.client_cert_file.empty()) {
    spec.client_cert_file = ResolvePath(spec.client_cert_file, base_dir);
    spec.client_key_file = ResolvePath(spec.client_key_file, base_dir);
  }
  return spec;
}

// Checks the identity mapping of an opendsr store: each identity key names
// an OpenDSR 2.0 identity type (specification section 5.1).
absl::Status CheckOpenDsrIdentityTypes(const CollectionSpec& collection,
                                       const std::string& where) {
  static const auto* types =
      new std::set<std::string>{"controller_customer_id",
                                "android_advertising_id",
                                "android_id",
                                "email",
                                "fire_advertising_id",
                                "ios_advertising_id",
                                "ios_vendor_id",
                                "microsoft_advertising_id",
                                "microsoft_publisher_id",
                                "roku_publisher_id",
                                "roku_advertising_id"};
  for (const auto& [key, type] : collection.identity_fields) {
    if (types->count(type) == 0) {
      return Invalid(absl::StrCat(where, ".identity_fields.", key),
                     absl::StrCat(Quoted(type),
                                  " is not an OpenDSR identity type (known: ",
                                  absl::StrJoin(*types, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// A postgres store's `connection` map. A `password` key is refused: the
// inventory is read by every worker and kept in version control, so it
// names where the password is (password_file, password_env) instead.
absl::Status ParseConnection(const YAML::Node& node, const std::string& where,
                             const std::string& base_dir,
                             PostgresConnection* out) {
  if (!node || node.IsNull()) {
    return Invalid(where, "missing (a postgres store needs host and dbname)");
  }
  if (!node.IsMap()) return Invalid(where, "must be a map");
  if (node["password"]) {
    return Invalid(where + ".password",
                   "a password is never written in the inventory; name a "
                   "file holding it (password_file) or an environment "
                   "variable (password_env)");
  }
  RETURN_IF_ERROR(CheckKeys(node, ConnectionKeys(), where));
  RETURN_IF_ERROR(ReadString(node, "host", where, &out->host));
  RETURN_IF_ERROR(ReadString(node, "port", where, &out->port));
  RETURN_IF_ERROR(ReadString(node, "dbname", where, &out->dbname));
  RETURN_IF_ERROR(ReadString(node, "user", where, &out->user));
  RETURN_IF_ERROR(
      ReadString(node, "password_file", where, &out->password_file));
  RETURN_IF_ERROR(ReadString(node, "password_env", where, &out->password_env));
  RETURN_IF_ERROR(ReadString(node, "sslmode", where, &out->sslmode));
  RETURN_IF_ERROR(ReadString(node, "sslrootcert", where, &out->sslrootcert));
  if (out->host.empty()) return Invalid(where + ".host", "missing");
  if (out->dbname.empty()) return Invalid(where + ".dbname", "missing");
  if (!out->port.empty()) {
    bool digits = out->port.size() <= 5 &&
                  std::all_of(out->port.begin(), out->port.end(),
                              [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(out->port) == 0 || std::stoi(out->port) > 65535) {
      return Invalid(where + ".port",
                     absl::StrCat(Quoted(out->port), " is not a port number"));
    }
  }
  if (!out->password_file.empty() && !out->password_env.empty()) {
    return Invalid(where, "give password_file or password_env, not both");
  }
  if (!out->password_file.empty()) {
    out->password_file = ResolvePath(out->password_file, base_dir);
  }
  if (!out->sslrootcert.empty()) {
    out->sslrootcert = ResolvePath(out->sslrootcert, base_dir);
  }
  if (out->sslmode.empty()) {
    // TLS is verified unless the server is on this machine's socket.
    out->sslmode = out->host[0] == '/' ? "disable" : "verify-full";
  }
  if (SslModes().count(out->sslmode) == 0) {
    return Invalid(
        where + ".sslmode",
        absl::StrCat("unknown mode ", Quoted(out->sslmode),
                     " (known: ", absl::StrJoin(SslModes(), ", "), ")"));
  }
  return absl::OkStatus();
}

// Masking needs rows that stay (a table), and `hash` needs the key.
absl::Status CheckMaskSupport(const std::string& kind,
                              const CollectionSpec& collection,
                              bool has_masking_key, const std::string& where) {
  if (!collection.mask_on_erase) return absl::OkStatus();
  if (kind == "jsonl") {
    return Invalid(where + ".mode",
                   "a jsonl log is erased by deleting lines; mask is for "
                   "sqlite and postgres tables");
  }
  for (const auto& [field, mask] : collection.masks) {
    if (mask.strategy == MaskStrategy::kHash && !has_masking_key) {
      return Invalid(absl::StrCat(where, ".fields.", field),
                     "hash needs the inventory's masking_key_file");
    }
  }
  return absl::OkStatus();
}

// The Art. 15 fields and the ordering every kind of store has.
absl::Status ReadDescriptionAndOrder(const YAML::Node& node,
                                     const std::string& where,
                                     StoreSpec* store) {
  RETURN_IF_ERROR(ReadString(node, "purpose", where, &store->purpose));
  RETURN_IF_ERROR(ReadString(node, "legal_basis", where, &store->legal_basis));
  RETURN_IF_ERROR(
      ReadStringList(node, "recipients", where, &store->recipients));
  RETURN_IF_ERROR(ReadString(node, "retention", where, &store->retention));
  RETURN_IF_ERROR(ReadString(node, "source", where, &store->source));
  RETURN_IF_ERROR(
      ReadStringList(node, "identities_from", where, &store->identities_from));
  return ReadStringList(node, "erase_after", where, &store->erase_after);
}

// A manual store (docs/manual-stores.md): no path and no tables; an owner,
// instructions, the identity kinds the owner searches by and an optional
// due_within ("72h", "7d").
absl::StatusOr<StoreSpec> ParseManualStore(const YAML::Node& node,
                                           const std::string& where,
                                           StoreSpec store) {
  for (const char* key :
       {"path", "connection", "schema", "tables", "identity_fields",
        "pii_fields", "processing_flags", "canonical_identities", "field_types",
        "privacy_status", "record_key"}) {
    if (node[key]) {
      return Invalid(absl::StrCat(where, ".", key),
                     "a manual store has no connector to use it (give owner, "
                     "instructions and identity_kinds)");
    }
  }
  RETURN_IF_ERROR(ReadString(node, "owner", where, &store.owner));
  if (store.owner.empty()) return Invalid(where + ".owner", "missing");
  RETURN_IF_ERROR(ReadString(node, "instructions", where, &store.instructions));
  if (store.instructions.empty()) {
    return Invalid(where + ".instructions", "missing");
  }
  std::vector<std::string> kinds;
  RETURN_IF_ERROR(ReadStringList(node, "identity_kinds", where, &kinds));
  if (kinds.empty()) {
    return Invalid(where + ".identity_kinds",
                   "missing (the identity kinds the owner searches by, e.g. "
                   "[email, user_id])");
  }
  CollectionSpec collection;
  collection.name = store.name;
  for (const std::string& kind : kinds) {
    if (kind.empty()) return Invalid(where + ".identity_kinds", "empty kind");
    collection.identity_fields[kind] = kind;
  }
  store.collections.push_back(std::move(collection));
  std::string due;
  RETURN_IF_ERROR(ReadString(node, "due_within", where, &due));
  if (!due.empty()) {
    // absl::ParseDuration has no days; "7d" is how people write it.
    int64_t days = 0;
    absl::Duration parsed;
    if (absl::EndsWith(due, "d") &&
        absl::SimpleAtoi(due.substr(0, due.size() - 1), &days) && days > 0 &&
        days <= 366) {
      store.due_within = absl::Hours(24 * days);
    } else if (absl::ParseDuration(due, &parsed) &&
               parsed >= absl::Minutes(1) && parsed <= absl::Hours(24 * 366)) {
      store.due_within = parsed;
    } else {
      return Invalid(where + ".due_within",
                     absl::StrCat(Quoted(due),
                                  " is not a duration between 1m and 366d "
                                  "(e.g. \"72h\", \"7d\")"));
    }
  }
  RETURN_IF_ERROR(ReadDescriptionAndOrder(node, where, &store));
  return store;
}

absl::StatusOr<StoreSpec> ParseStore(const YAML::Node& node, size_t index,
                                     const std::string& base_dir,
                                     bool has_masking_key) {
  std::string where = absl::StrCat("stores[", index, "]");
  if (!node.IsMap()) return Invalid(where, "must be a map");
  StoreSpec store;
  RETURN_IF_ERROR(ReadString(node, "name", where, &store.name));
  if (store.name.empty()) return Invalid(where + ".name", "missing");
  if (!IsValidStoreName(store.name)) {
    return Invalid(where + ".name",
                   absl::StrCat(Quoted(store.name), " must match [a-z0-9_-]+"));
  }
  where = absl::StrCat(where, " (", Quoted(store.name), ")");
  RETURN_IF_ERROR(CheckKeys(node, StoreKeys(), where));

  RETURN_IF_ERROR(ReadString(node, "kind", where, &store.kind));
  if (store.kind.empty()) {
    // YAML reads a bare `kind: null` as no value at all.
    return Invalid(where + ".kind",
                   node["kind"] && node["kind"].IsNull()
                       ? "missing (for a null store write kind: \"null\", "
                         "quoted)"
                       : "missing");
  }
  if (store.kind != "sqlite" && store.kind != "jsonl" &&
      store.kind != "postgres" && store.kind != "opendsr" &&
      !IsManualStore(store) && !IsNullStore(store)) {
    return Invalid(where + ".kind",
                   absl::StrCat("unknown kind ", Quoted(store.kind),
                                " (known: sqlite, jsonl, postgres, opendsr, "
                                "manual, null)"));
  }
  RETURN_IF_ERROR(ReadString(node, "group", where, &store.group));
  if (IsManualStore(store)) return ParseManualStore(node, where, store);
  for (const std::string& key : ManualOnlyKeys()) {
    if (node[key]) {
      return Invalid(where + "." + key, "only a manual store has this key");
    }
  }
  bool postgres = store.kind == "postgres";
  if (store.kind != "opendsr" && node["opendsr"]) {
    return Invalid(where + ".opendsr", "only for kind opendsr");
  }
  RETURN_IF_ERROR(ReadString(node, "path", where, &store.path));
  if (store.kind == "opendsr") {
    if (node["path"]) {
      return Invalid(where + ".path",
                     "an opendsr store has no path: give opendsr.url");
    }
    ASSIGN_OR_RETURN(store.opendsr, ParseOpenDsr(node, where, base_dir));
    store.path = store.opendsr.url;
  } else if (IsNullStore(store)) {
    for (const char* key : {"path", "connection", "schema"}) {
      if (node[key] && !node[key].IsNull()) {
        return Invalid(absl::StrCat(where, ".", key),
                       "a null store holds nothing and has nothing to open");
      }
    }
  } else if (postgres) {
    if (!store.path.empty()) {
      return Invalid(where + ".path",
                     "a postgres store is reached through connection, not a "
                     "path");
    }
    RETURN_IF_ERROR(ParseConnection(node["connection"], where + ".connection",
                                    base_dir, &store.connection));
    RETURN_IF_ERROR(ReadString(node, "schema", where, &store.schema));
    if (store.schema.empty()) store.schema = "public";
  } else {
    for (const char* key : {"connection", "schema"}) {
      if (node[key] && !node[key].IsNull()) {
        return Invalid(absl::StrCat(where, ".", key),
                       "only a postgres store has one");
      }
    }
    if (store.path.empty()) return Invalid(where + ".path", "missing");
    store.path = ResolvePath(store.path, base_dir);
  }

  RETURN_IF_ERROR(ReadDescriptionAndOrder(node, where, &store));

  YAML::Node tables = node["tables"];
  bool has_tables = tables && !tables.IsNull();
  bool has_top_level_fields = false;
  for (const char* key : {"identity_fields", "pii_fields", "processing_flags",
                          "canonical_identities", "field_types", "erase",
                          "privacy_status", "record_key"}) {
    if (node[key] && !node[key].IsNull()) has_top_level_fields = true;
  }
  if (has_tables) {
    if (!tables.IsSequence() || tables.size() == 0) {
      return Invalid(where + ".tables", "must be a non-empty list");
    }
    if (has_top_level_fields) {
      return Invalid(where,
                     "give either tables or top-level identity_fields/"
                     "pii_fields/processing_flags, not both");
    }
    if (store.kind == "opendsr") {
      return Invalid(where + ".tables",
                     "an opendsr store has no tables: give identity_fields "
                     "(identity key: OpenDSR identity type)");
    }
    if (IsNullStore(store)) {
      return Invalid(where + ".tables",
                     "a null store has no tables: give identity_fields");
    }
    if (store.kind == "jsonl" && tables.size() != 1) {
      return Invalid(where + ".tables",
                     "a jsonl store holds exactly one collection");
    }
    std::set<std::string> table_names;
    for (size_t i = 0; i < tables.size(); ++i) {
      std::string table_where = absl::StrCat(where, ".tables[", i, "]");
      if (!tables[i].IsMap()) return Invalid(table_where, "must be a map");
      ASSIGN_OR_RETURN(CollectionSpec collection,
                       ParseCollection(tables[i], table_where));
      if (collection.name.empty()) {
        if (store.kind != "jsonl") {
          return Invalid(table_where + ".name", "missing");
        }
        collection.name = store.name;
      }
      table_where =
          absl::StrCat(table_where, " (", Quoted(collection.name), ")");
      RETURN_IF_ERROR(CheckKeys(tables[i], TableKeys(), table_where));
      RETURN_IF_ERROR(ValidateCollection(collection, table_where));
      RETURN_IF_ERROR(CheckMaskSupport(store.kind, collection, has_masking_key,
                                       table_where + ".erase"));
      if (!table_names.insert(collection.name).second) {
        return Invalid(table_where + ".name", "duplicate table name");
      }
      store.collections.push_back(std::move(collection));
    }
  } else if (store.kind == "jsonl" || store.kind == "opendsr" ||
             IsNullStore(store)) {
    ASSIGN_OR_RETURN(CollectionSpec collection, ParseCollection(node, where));
    collection.name = store.name;
    RETURN_IF_ERROR(ValidateCollection(collection, where));
    if (store.kind == "opendsr") {
      RETURN_IF_ERROR(CheckOpenDsrIdentityTypes(collection, where));
      for (const char* key : {"privacy_status", "record_key"}) {
        if (node[key] && !node[key].IsNull()) {
          return Invalid(absl::StrCat(where, ".", key),
                         "an opendsr store is not scanned by audits (the "
                         "processor holds the data)");
        }
      }
    }
    if (IsNullStore(store)) {
      for (const char* key : {"privacy_status", "record_key", "erase"}) {
        if (node[key] && !node[key].IsNull()) {
          return Invalid(absl::StrCat(where, ".", key),
                         "a null store holds no record to scan or mask");
        }
      }
    }
    RETURN_IF_ERROR(CheckMaskSupport(store.kind, collection, has_masking_key,
                                     where + ".erase"));
    store.collections.push_back(std::move(collection));
  } else {
    if (has_top_level_fields) {
      return Invalid(where,
                     absl::StrCat("a ", store.kind,
                                  " store lists its fields under tables"));
    }
    return Invalid(where + ".tables", absl::StrCat("missing (a ", store.kind,
                                                   " store needs a table)"));
  }
  return store;
}

// Finds a cycle in `edges` (store -> stores it waits for). Returns the stores
// on the cycle, first repeated at the end, or an empty vector.
std::vector<std::string> FindCycle(
    const std::vector<std::string>& order,
    const std::map<std::string, std::vector<std::string>>& edges) {
  enum class Mark { kNew, kOnPath, kDone };
  std::map<std::string, Mark> marks;
  std::vector<std::string> path;
  std::vector<std::string> cycle;

  // Recursion depth is bounded by the number of stores.
  std::function<bool(const std::string&)> visit =
      [&](const std::string& name) -> bool {
    marks[name] = Mark::kOnPath;
    path.push_back(name);
    auto it = edges.find(name);
    if (it != edges.end()) {
      for (const std::string& next : it->second) {
        Mark mark = marks.count(next) ? marks[next] : Mark::kNew;
        if (mark == Mark::kOnPath) {
          auto start = std::find(path.begin(), path.end(), next);
          cycle.assign(start, path.end());
          cycle.push_back(next);
          return true;
        }
        if (mark == Mark::kNew && visit(next)) return true;
      }
    }
    path.pop_back();
    marks[name] = Mark::kDone;
    return false;
  };
  for (const std::string& name : order) {
    if (marks.count(name) == 0 && visit(name)) return cycle;
  }
  return {};
}

absl::Status CheckNoCycle(const std::vector<StoreSpec>& stores,
                          const char* field,
                          std::vector<std::string> StoreSpec::*member) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> edges;
  for (const StoreSpec& store : stores) {
    order.push_back(store.name);
    edges[store.name] = store.*member;
  }
  std::vector<std::string> cycle = FindCycle(order, edges);
  if (cycle.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "stores: cycle in ", field, ": ", absl::StrJoin(cycle, " -> ")));
}

// Executor groups (seed 001): each store of a group is erased after the
// one before it in the file. Expressed as erase_after so the engine needs
// no notion of groups for ordering.
void AddGroupOrder(std::vector<StoreSpec>& stores) {
  std::map<std::string, std::string> last_of_group;
  for (StoreSpec& store : stores) {
    if (store.group.empty()) continue;
    auto last = last_of_group.find(store.group);
    if (last != last_of_group.end() &&
        std::find(store.erase_after.begin(), store.erase_after.end(),
                  last->second) == store.erase_after.end()) {
      store.erase_after.push_back(last->second);
    }
    last_of_group[store.group] = store.name;
  }
}

}  // namespace

FieldType FieldTypeOf(const CollectionSpec& collection,
                      const std::string& field) {
  auto declared = collection.field_types.find(field);
  if (declared != collection.field_types.end()) return declared->second;
  for (const auto& [key, identity_field] : collection.identity_fields) {
    if (identity_field != field) continue;
    if (key == kEmailKey) return FieldType::kEmail;
    if (key == kPhoneKey) return FieldType::kPhone;
  }
  return FieldType::kText;
}

bool IsProcessingFlagName(std::string_view name) {
  return name == "restriction" || name == "objection";
}

absl::StatusOr<Inventory> Inventory::Parse(std::string_view yaml,
                                           const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // yaml-cpp marks are 0-based; editors count from 1.
    return absl::InvalidArgumentError(
        absl::StrCat("inventory: YAML syntax error at line ", e.mark.line + 1,
                     ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        "inventory: the document must be a map with a `stores` list");
  }

  Inventory inventory;
  try {
    int nodes_left = kMaxInventoryNodes;
    RETURN_IF_ERROR(RefuseFillInPlaceholders(root, "inventory", 0, nodes_left));
    RETURN_IF_ERROR(CheckKeys(root, TopLevelKeys(), "inventory"));
    RETURN_IF_ERROR(
        ReadString(root, "controller", "inventory", &inventory.controller_));
    RETURN_IF_ERROR(ReadString(root, "default_phone_region", "inventory",
                               &inventory.default_phone_region_));
    if (!inventory.default_phone_region_.empty() &&
        !IsKnownPhoneRegion(inventory.default_phone_region_)) {
      return Invalid("inventory.default_phone_region",
                     absl::StrCat(Quoted(inventory.default_phone_region_),
                                  " is not an ISO 3166-1 alpha-2 region code "
                                  "with phone numbering data (e.g. GB, US)"));
    }
    std::string masking_key_file;
    RETURN_IF_ERROR(
        ReadString(root, "masking_key_file", "inventory", &masking_key_file));
    if (!masking_key_file.empty()) {
      masking_key_file = ResolvePath(masking_key_file, base_dir);
    }
    YAML::Node stores = root["stores"];
    if (!stores || !stores.IsSequence() || stores.size() == 0) {
      return absl::InvalidArgumentError(
          "stores: missing or not a non-empty list");
    }
    for (size_t i = 0; i < stores.size(); ++i) {
      ASSIGN_OR_RETURN(
          StoreSpec store,
          ParseStore(stores[i], i, base_dir,
                     /*has_masking_key=*/!masking_key_file.empty()));
      store.default_phone_region = inventory.default_phone_region_;
      store.masking_key_file = masking_key_file;
      inventory.stores_.push_back(std::move(store));
    }
  } catch (const YAML::Exception& e) {
    // Defensive: every access above checks node types first.
    return absl::InvalidArgumentError(
        absl::StrCat("inventory: line ", e.mark.line + 1, ", column ",
                     e.mark.column + 1, ": ", e.msg));
  }

  // Cross-store checks: unique names, known references, no cycles.
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < inventory.stores_.size(); ++i) {
    const StoreSpec& store = inventory.stores_[i];
    if (!index_of.emplace(store.name, i).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stores[", i, "] (", Quoted(store.name),
          ").name: duplicate of stores[", index_of[store.name], "]"));
    }
  }
  for (size_t i = 0; i < inventory.stores_.size(); ++i) {
    const StoreSpec& store = inventory.stores_[i];
    std::string where =
        absl::StrCat("stores[", i, "] (", Quoted(store.name), ")");
    for (const auto& [field, refs] :
         {std::pair<const char*, const std::vector<std::string>*>{
              "identities_from", &store.identities_from},
          {"erase_after", &store.erase_after}}) {
      for (const std::string& ref : *refs) {
        if (index_of.count(ref) == 0) {
          return Invalid(absl::StrCat(where, ".", field),
                         absl::StrCat("unknown store ", Quoted(ref)));
        }
        if (ref == store.name) {
          return Invalid(absl::StrCat(where, ".", field),
                         "a store cannot refer to itself");
        }
      }
    }
  }
  AddGroupOrder(inventory.stores_);
  // The two orders are checked apart: discovery follows identities_from, and
  // erasure runs after discovery has finished, following erase_after. A store
  // that needs another's identities may well be erased before it (orders
  // needs accounts' user_id; accounts is erased after orders).
  RETURN_IF_ERROR(CheckNoCycle(inventory.stores_, "identities_from",
                               &StoreSpec::identities_from));
  RETURN_IF_ERROR(
      CheckNoCycle(inventory.stores_, "erase_after", &StoreSpec::erase_after));
  return inventory;
}

absl::StatusOr<Inventory> Inventory::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(
          absl::StrCat("inventory file not found: ", path));
    }
    return text.status();
  }
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  std::string base_dir =
      error ? DirName(path) : absolute.parent_path().string();
  absl::StatusOr<Inventory> inventory = Parse(*text, base_dir);
  if (!inventory.ok()) {
    return absl::Status(inventory.status().code(),
                        absl::StrCat(path, ": ", inventory.status().message()));
  }
  return inventory;
}

const StoreSpec* Inventory::Find(std::string_view name) const {
  for (const StoreSpec& store : stores_) {
    if (store.name == name) return &store;
  }
  return nullptr;
}

}  // namespace dsar
