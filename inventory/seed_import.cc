#include "inventory/seed_import.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

absl::Status Invalid(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
std::string Quote(const std::string& text) {
  return nlohmann::json(text).dump();
}

// A store name dsar accepts: [a-z0-9_-]+, other characters become '-'.
std::string StoreName(const std::string& name) {
  std::string out = absl::AsciiStrToLower(name);
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      c = '-';
    }
  }
  return out;
}

// The Art. 15 category of a field, guessed from its name.
std::string CategoryOf(const std::string& field) {
  const std::string f = absl::AsciiStrToLower(field);
  auto has = [&f](absl::string_view part) {
    return absl::StrContains(f, part);
  };
  if (has("ip") && (has("address") || f == "ip" || has("ip_"))) {
    return "online_identifiers";
  }
  if (has("user_agent") || has("device") || has("cookie")) {
    return "online_identifiers";
  }
  if (has("mail") || has("phone") || has("mobile") || has("address") ||
      has("street") || has("city") || has("postcode") || has("zip")) {
    return "contact";
  }
  if (has("name") || has("birth") || has("dob")) return "identity";
  return "personal";
}

// The identity key a field holds, or "" when it holds none.
std::string IdentityKeyOf(const std::string& field) {
  const std::string f = absl::AsciiStrToLower(field);
  if (absl::StrContains(f, "email")) return "email";
  if (absl::StrContains(f, "phone") || absl::StrContains(f, "mobile")) {
    return "phone";
  }
  if (f == "user_id" || f == "userid" || f == "customer_id") return "user_id";
  return "";
}

struct SeedStore {
  std::string name;
  std::string type;
  bool contains_pii = true;
  std::vector<std::string> pii_fields;
  std::string retention;
};

absl::StatusOr<SeedStore> ReadSeedStore(const YAML::Node& node,
                                        const std::string& where) {
  if (!node.IsMap()) return Invalid(where, "must be a map");
  static const std::set<std::string> kKeys = {"name", "type", "contains_pii",
                                              "pii_fields", "retention_policy"};
  SeedStore store;
  try {
    for (const auto& entry : node) {
      std::string key = entry.first.as<std::string>();
      if (kKeys.count(key) == 0) {
        return Invalid(where, absl::StrCat("unknown key \"", key, "\" (known: ",
                                           absl::StrJoin(kKeys, ", "), ")"));
      }
    }
    if (!node["name"] || !node["name"].IsScalar() ||
        node["name"].as<std::string>().empty()) {
      return Invalid(where + ".name", "missing");
    }
    store.name = node["name"].as<std::string>();
    if (!node["type"] || !node["type"].IsScalar()) {
      return Invalid(where + ".type", "missing");
    }
    store.type = node["type"].as<std::string>();
    if (node["contains_pii"])
      store.contains_pii = node["contains_pii"].as<bool>();
    if (node["retention_policy"]) {
      store.retention = node["retention_policy"].as<std::string>();
    }
    if (YAML::Node fields = node["pii_fields"]) {
      if (!fields.IsSequence()) {
        return Invalid(where + ".pii_fields", "must be a list of field names");
      }
      for (size_t i = 0; i < fields.size(); ++i) {
        if (!fields[i].IsScalar() || fields[i].as<std::string>().empty()) {
          return Invalid(absl::StrCat(where, ".pii_fields[", i, "]"),
                         "must be a field name");
        }
        store.pii_fields.push_back(fields[i].as<std::string>());
      }
    }
  } catch (const YAML::Exception& e) {
    return Invalid(where, e.what());
  }
  return store;
}

// "{a: b, c: d}" with quoted keys and values.
std::string FlowMap(const std::vector<std::pair<std::string, std::string>>& m) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : m) {
    parts.push_back(absl::StrCat(Quote(key), ": ", Quote(value)));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

}  // namespace

absl::StatusOr<ImportedInventory> ImportSeedInventory(
    std::string_view seed_yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(seed_yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", e.what()));
  }
  if (!root.IsMap() || !root["data_stores"] ||
      !root["data_stores"].IsSequence()) {
    return Invalid("data_stores",
                   "missing (expected the seed's data_stores "
                   "list)");
  }
  ImportedInventory result;
  std::string out =
      "# Imported from the seed designs' data-inventory.yaml by dsarctl "
      "inventory import.\n"
      "# Every \"<fill in>\" must be replaced before dsard loads it; the "
      "report lists them.\n"
      "# See docs/inventory.md and docs/manual-stores.md.\n"
      "stores:\n";
  std::set<std::string> names;
  int index = 0;
  const YAML::Node stores = root["data_stores"];
  for (size_t i = 0; i < stores.size(); ++i) {
    std::string where = absl::StrCat("data_stores[", i, "]");
    absl::StatusOr<SeedStore> seed = ReadSeedStore(stores[i], where);
    if (!seed.ok()) return seed.status();
    if (!seed->contains_pii) {
      result.skipped.push_back(absl::StrCat(where, " (\"", seed->name,
                                            "\"): contains_pii is false"));
      continue;
    }
    std::string name = StoreName(seed->name);
    if (!names.insert(name).second) {
      return Invalid(where + ".name",
                     absl::StrCat("\"", seed->name, "\" repeats a store name"));
    }
    std::string at = absl::StrCat("stores[", index++, "] (\"", name, "\")");
    if (name != seed->name) {
      result.to_fill.push_back(
          absl::StrCat(at, ".name: renamed from \"", seed->name,
                       "\" (names are [a-z0-9_-]+); check references to it"));
    }
    std::vector<std::pair<std::string, std::string>> identity_fields;
    std::set<std::string> keys;
    std::vector<std::pair<std::string, std::string>> pii_fields;
    for (const std::string& field : seed->pii_fields) {
      pii_fields.emplace_back(field, CategoryOf(field));
      std::string key = IdentityKeyOf(field);
      if (!key.empty() && keys.insert(key).second) {
        identity_fields.emplace_back(key, field);
      }
    }
    const std::string type = absl::AsciiStrToLower(seed->type);
    absl::StrAppend(&out, "  - name: ", Quote(name), "\n");
    if (type == "postgresql" || type == "postgres") {
      absl::StrAppend(&out, "    kind: postgres\n", "    connection:\n");
      for (const char* key : {"host", "dbname", "user", "password_file"}) {
        absl::StrAppend(&out, "      ", key, ": ", Quote(kFillIn), "\n");
        result.to_fill.push_back(absl::StrCat(at, ".connection.", key));
      }
      absl::StrAppend(&out, "      sslmode: verify-full\n");
      if (identity_fields.empty()) {
        identity_fields.emplace_back("user_id", kFillIn);
        result.to_fill.push_back(absl::StrCat(
            at,
            ".tables[0].identity_fields: no listed field identifies the "
            "subject; name the column holding the user id (or another "
            "identity)"));
      }
      absl::StrAppend(
          &out, "    tables:\n", "      - name: ", Quote(name), "\n",
          "        identity_fields: ", FlowMap(identity_fields), "\n");
      if (!pii_fields.empty()) {
        absl::StrAppend(&out, "        pii_fields: ", FlowMap(pii_fields),
                        "\n");
      }
      result.to_fill.push_back(absl::StrCat(
          at,
          ".tables[0].name: guessed from the store's name; check it and "
          "the categories guessed for its pii_fields"));
    } else {
      std::vector<std::string> kinds;
      for (const auto& [key, field] : identity_fields) kinds.push_back(key);
      std::string instructions = absl::StrCat(
          "Find the subject's records in ", seed->type, " (", seed->name, ")",
          seed->pii_fields.empty()
              ? std::string()
              : absl::StrCat(", fields ",
                             absl::StrJoin(seed->pii_fields, ", ")),
          "; export or erase them as the item says and record the evidence.");
      absl::StrAppend(&out, "    kind: manual\n", "    owner: ", Quote(kFillIn),
                      "\n", "    instructions: ", Quote(instructions), "\n");
      result.to_fill.push_back(absl::StrCat(
          at, ".owner: who searches ", seed->type,
          " by hand (no connector for it; docs/manual-stores.md)"));
      if (kinds.empty()) {
        kinds.push_back(kFillIn);
        result.to_fill.push_back(absl::StrCat(
            at,
            ".identity_kinds: which identities find the subject (its "
            "fields hold none)"));
      }
      std::vector<std::string> quoted;
      for (const std::string& kind : kinds) quoted.push_back(Quote(kind));
      absl::StrAppend(&out, "    identity_kinds: [",
                      absl::StrJoin(quoted, ", "), "]\n");
    }
    if (!seed->retention.empty()) {
      absl::StrAppend(&out, "    retention: ", Quote(seed->retention), "\n");
    }
    absl::StrAppend(&out, "    purpose: ", Quote(kFillIn), "\n",
                    "    legal_basis: ", Quote(kFillIn), "\n");
    result.to_fill.push_back(
        absl::StrCat(at,
                     ".purpose, .legal_basis: quoted in the Art. 15 "
                     "answer"));
  }
  result.yaml = std::move(out);
  return result;
}

}  // namespace dsar
