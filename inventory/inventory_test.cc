#include "inventory/inventory.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kShop[] = R"yaml(
controller: "Example Shop Ltd"
stores:
  - name: accounts
    kind: sqlite
    path: accounts.db
    purpose: "Customer accounts and login"
    legal_basis: "Contract (GDPR Art. 6(1)(b))"
    recipients: ["Payment processor"]
    retention: "Account lifetime + 30 days"
    source: "Provided by the data subject"
    tables:
      - name: users
        identity_fields: {email: email, user_id: id, phone: phone}
        pii_fields: {email: contact, full_name: identity, phone: contact}
        processing_flags: {restriction: restricted, objection: objected}
    identities_from: []
    erase_after: [orders, activity]
  - name: orders
    kind: sqlite
    path: /data/shop.db
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
      - name: addresses
        identity_fields: {user_id: user_id}
        pii_fields: {street: contact, city: contact}
    identities_from: [accounts]
  - name: activity
    kind: jsonl
    path: logs/../logs/activity.jsonl
    identity_fields: {user_id: user_id}
    pii_fields: {ip: online_identifiers}
    processing_flags: {restriction: restricted}
    identities_from: [accounts]
)yaml";

// Replaces `from` by `to` in the shop inventory, checking it was there.
std::string ShopWith(const std::string& from, const std::string& to) {
  std::string yaml = kShop;
  EXPECT_NE(yaml.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(yaml, {{from, to}});
}

// The message of `yaml` refused with INVALID_ARGUMENT once `from` (checked
// to be there) is replaced by `to`.
std::string ErrorWith(const std::string& yaml, const std::string& from,
                      const std::string& to) {
  EXPECT_NE(yaml.find(from), std::string::npos) << from;
  absl::StatusOr<Inventory> parsed =
      Inventory::Parse(absl::StrReplaceAll(yaml, {{from, to}}), "/base");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(InventoryTest, DefaultPhoneRegionIsOptionalAndReachesEveryStore) {
  absl::StatusOr<Inventory> without = Inventory::Parse(kShop, "/srv/dsar");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(without->default_phone_region(), "");

  absl::StatusOr<Inventory> with = Inventory::Parse(
      ShopWith("controller:", "default_phone_region: GB\ncontroller:"),
      "/srv/dsar");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->default_phone_region(), "GB");
  for (const StoreSpec& store : with->stores()) {
    EXPECT_EQ(store.default_phone_region, "GB") << store.name;
  }
}

TEST(InventoryTest, FieldTypesDefaultByIdentityKey) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      ShopWith("processing_flags: {restriction: restricted, objection: "
               "objected}",
               "processing_flags: {restriction: restricted, objection: "
               "objected}\n        field_types: {full_name: user_id}"),
      "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const CollectionSpec& users = inventory->stores()[0].collections[0];
  EXPECT_EQ(FieldTypeOf(users, "full_name"), FieldType::kUserId);
  EXPECT_EQ(FieldTypeOf(users, "email"), FieldType::kEmail);
  EXPECT_EQ(FieldTypeOf(users, "phone"), FieldType::kPhone);
  EXPECT_EQ(FieldTypeOf(users, "id"), FieldType::kText);
}

TEST(InventoryTest, CanonicalIdentitiesAreOptional) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      ShopWith("processing_flags: {restriction: restricted, objection: "
               "objected}",
               "processing_flags: {restriction: restricted, objection: "
               "objected}\n        canonical_identities: [email, phone]"),
      "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_THAT(inventory->stores()[0].collections[0].canonical_identities,
              ElementsAre("email", "phone"));
  EXPECT_TRUE(
      inventory->stores()[1].collections[0].canonical_identities.empty());
}

TEST(InventoryTest, ParsesEveryField) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(kShop, "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->controller(), "Example Shop Ltd");
  ASSERT_EQ(inventory->stores().size(), 3u);

  const StoreSpec& accounts = inventory->stores()[0];
  EXPECT_EQ(accounts.name, "accounts");
  EXPECT_EQ(accounts.kind, "sqlite");
  EXPECT_EQ(accounts.path, "/srv/dsar/accounts.db");
  EXPECT_EQ(accounts.purpose, "Customer accounts and login");
  EXPECT_EQ(accounts.legal_basis, "Contract (GDPR Art. 6(1)(b))");
  EXPECT_THAT(accounts.recipients, ElementsAre("Payment processor"));
  EXPECT_EQ(accounts.retention, "Account lifetime + 30 days");
  EXPECT_EQ(accounts.source, "Provided by the data subject");
  EXPECT_TRUE(accounts.identities_from.empty());
  EXPECT_THAT(accounts.erase_after, ElementsAre("orders", "activity"));
  ASSERT_EQ(accounts.collections.size(), 1u);
  EXPECT_EQ(accounts.collections[0].name, "users");
  EXPECT_THAT(accounts.collections[0].identity_fields,
              ElementsAre(Pair("email", "email"), Pair("phone", "phone"),
                          Pair("user_id", "id")));
  EXPECT_THAT(
      accounts.collections[0].pii_fields,
      ElementsAre(Pair("email", "contact"), Pair("full_name", "identity"),
                  Pair("phone", "contact")));
  EXPECT_THAT(accounts.collections[0].processing_flags,
              ElementsAre(Pair("objection", "objected"),
                          Pair("restriction", "restricted")));

  const StoreSpec& orders = inventory->stores()[1];
  EXPECT_EQ(orders.path, "/data/shop.db");  // Absolute paths stay.
  ASSERT_EQ(orders.collections.size(), 2u);
  EXPECT_EQ(orders.collections[1].name, "addresses");
  EXPECT_THAT(orders.identities_from, ElementsAre("accounts"));

  const StoreSpec& activity = inventory->stores()[2];
  EXPECT_EQ(activity.path, "/srv/dsar/logs/activity.jsonl");
  ASSERT_EQ(activity.collections.size(), 1u);
  EXPECT_EQ(activity.collections[0].name, "activity");
  EXPECT_THAT(activity.collections[0].identity_fields,
              ElementsAre(Pair("user_id", "user_id")));
  EXPECT_THAT(activity.collections[0].pii_fields,
              ElementsAre(Pair("ip", "online_identifiers")));
  EXPECT_THAT(activity.collections[0].processing_flags,
              ElementsAre(Pair("restriction", "restricted")));
  // Processing flags are optional.
  EXPECT_TRUE(orders.collections[0].processing_flags.empty());

  EXPECT_EQ(inventory->Find("orders"), &inventory->stores()[1]);
  EXPECT_EQ(inventory->Find("invoices"), nullptr);
}

TEST(InventoryTest, JsonlAcceptsSingleTableEntry) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - name: logs
    kind: jsonl
    path: a.jsonl
    tables:
      - identity_fields: {email: mail}
  - name: events
    kind: jsonl
    path: b.jsonl
    tables:
      - name: event_stream
        identity_fields: {email: mail}
)yaml",
                                                         "/x");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->stores()[0].collections[0].name, "logs");
  EXPECT_EQ(inventory->stores()[1].collections[0].name, "event_stream");
  EXPECT_EQ(inventory->controller(), "");
}

struct BadCase {
  std::string from;
  std::string to;
  std::string message;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.message; }

class InventoryErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(InventoryErrorTest, NamesEntryAndField) {
  const BadCase& c = GetParam();
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(ShopWith(c.from, c.to), "/srv");
  ASSERT_FALSE(inventory.ok());
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inventory.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InventoryErrorTest,
    ::testing::Values(
        BadCase{
            "identities_from: [accounts]\n  - name: activity",
            "identities_from: [accounts]\n    erase_after: [invoices]\n"
            "  - name: activity",
            R"(stores[1] ("orders").erase_after: unknown store "invoices")"},
        BadCase{"- name: activity", "- name: orders",
                R"(stores[2] ("orders").name: duplicate of stores[1])"},
        BadCase{
            "kind: jsonl", "kind: mongodb",
            R"(stores[2] ("activity").kind: unknown kind "mongodb" (known: sqlite, jsonl, postgres, opendsr, manual, null))"},
        BadCase{"    path: /data/shop.db\n", "",
                R"(stores[1] ("orders").path: missing)"},
        BadCase{"- name: activity", "- name: Activity",
                R"(stores[2].name: "Activity" must match [a-z0-9_-]+)"},
        BadCase{"- name: activity", "- name: \"act ivity\"",
                R"(stores[2].name: "act ivity" must match)"},
        BadCase{"    identity_fields: {user_id: user_id}\n    pii_fields: {ip",
                "    pii_fields: {ip",
                R"(stores[2] ("activity").identity_fields: missing)"},
        BadCase{
            "      - name: orders\n        identity_fields: {user_id: "
            "user_id}\n",
            "      - name: orders\n",
            R"(stores[1] ("orders").tables[0] ("orders").identity_fields: missing)"},
        BadCase{"    retention: ", "    retension: ",
                R"(stores[0] ("accounts"): unknown key "retension")"},
        BadCase{
            "        pii_fields: {street", "        pii_field: {street",
            R"(stores[1] ("orders").tables[1] ("addresses"): unknown key "pii_field")"},
        BadCase{"controller:", "controler:",
                R"(inventory: unknown key "controler")"},
        BadCase{
            "processing_flags: {restriction: restricted, objection: "
            "objected}",
            "processing_flags: {restriction: restricted, objection: "
            "objected}\n        canonical_identities: [user_id]",
            R"(tables[0] ("users").canonical_identities: "user_id": only email and phone)"},
        BadCase{
            "identity_fields: {email: email, user_id: id, phone: phone}",
            "identity_fields: {user_id: id, phone: phone}\n        "
            "canonical_identities: [email]",
            R"(tables[0] ("users").canonical_identities: "email" is not in identity_fields)"},
        BadCase{
            "processing_flags: {restriction: restricted, objection: "
            "objected}",
            "processing_flags: {restriction: restricted, objection: "
            "objected}\n        field_types: {full_name: string}",
            R"(stores[0] ("accounts").tables[0].field_types.full_name: unknown type "string")"},
        BadCase{
            "processing_flags: {restriction: restricted, objection: "
            "objected}",
            "processing_flags: {restriction: restricted, objection: "
            "objected}\n        field_types: {born: date}",
            R"(tables[0] ("users").field_types.born: not one of the collection's pii_fields or identity_fields)"},
        BadCase{"controller:", "default_phone_region: UK\ncontroller:",
                R"(inventory.default_phone_region: "UK" is not an ISO 3166-1)"},
        BadCase{"controller:", "default_phone_region: gb\ncontroller:",
                R"(inventory.default_phone_region: "gb" is not an ISO 3166-1)"},
        BadCase{"    recipients: [\"Payment processor\"]",
                "    recipients: {a: b}",
                R"(stores[0] ("accounts").recipients: must be a list)"},
        BadCase{
            "    kind: sqlite\n    path: /data/shop.db",
            "    kind: jsonl\n    path: /data/shop.db",
            R"(stores[1] ("orders").tables: a jsonl store holds exactly one)"},
        BadCase{"  - name: orders\n    kind: sqlite\n    path: /data/shop.db\n"
                "    tables:\n      - name: orders\n        identity_fields: "
                "{user_id: user_id}\n      - name: addresses\n        "
                "identity_fields: {user_id: user_id}\n        pii_fields: "
                "{street: contact, city: contact}\n",
                "  - name: orders\n    kind: sqlite\n    path: /data/shop.db\n",
                R"(stores[1] ("orders").tables: missing)"},
        BadCase{
            "identities_from: []", "identities_from: [accounts]",
            R"(stores[0] ("accounts").identities_from: a store cannot refer to itself)"},
        BadCase{"identities_from: []", "identities_from: [activity]",
                "cycle in identities_from: accounts -> activity -> accounts"},
        BadCase{"pii_fields: {ip: online_identifiers}\n",
                "pii_fields: {ip: online_identifiers}\n    erase_after: "
                "[accounts]\n",
                "cycle in erase_after: accounts -> activity -> accounts"},
        BadCase{
            "{restriction: restricted, objection: objected}",
            "{restriction: restricted, erasure: erased}",
            R"(stores[0] ("accounts").tables[0] ("users").processing_flags: unknown flag "erasure" (known: objection, restriction))"},
        BadCase{
            "{restriction: restricted, objection: objected}",
            "{restriction: id}",
            R"(stores[0] ("accounts").tables[0] ("users").processing_flags.restriction: field "id" is the identity field of "user_id")"},
        BadCase{
            "{restriction: restricted, objection: objected}",
            "{restriction: flagged, objection: flagged}",
            R"(stores[0] ("accounts").tables[0] ("users").processing_flags.restriction: field "flagged" is already the field of flag "objection")"},
        BadCase{
            "processing_flags: {restriction: restricted}\n    identities",
            "processing_flags: {objection: user_id}\n    identities",
            R"(stores[2] ("activity").processing_flags.objection: field "user_id" is the identity field)"},
        BadCase{
            "processing_flags: {restriction: restricted}\n    identities",
            "processing_flags: {restriction: restricted, "
            "restriction: other}\n    identities",
            R"(stores[2] ("activity").processing_flags: duplicate key "restriction")"},
        BadCase{"processing_flags: {restriction: restricted}\n    identities",
                "processing_flags: [restricted]\n    identities",
                R"(stores[2] ("activity").processing_flags: must be a map)"},
        BadCase{"    identities_from: [accounts]\n  - name: activity",
                "    identities_from: [accounts]\n    processing_flags: "
                "{restriction: r}\n  - name: activity",
                R"(stores[1] ("orders"): give either tables or top-level)"},
        BadCase{"tables:\n      - name: users", "tables:\n      - name: [users",
                "YAML syntax error at line 14, column 24"}));

TEST(InventoryTest, ErasingAfterAStoreThatFeedsIdentitiesIsAllowed) {
  // accounts feeds orders its user_id and is erased after orders: discovery
  // and erasure are separate passes, so this is not a cycle.
  absl::StatusOr<Inventory> inventory = Inventory::Parse(kShop, "/srv");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
}

TEST(InventoryTest, LongerCycleIsNamed) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: a, kind: jsonl, path: a, identity_fields: {email: e}, erase_after: [b]}
  - {name: b, kind: jsonl, path: b, identity_fields: {email: e}, erase_after: [c]}
  - {name: c, kind: jsonl, path: c, identity_fields: {email: e}, erase_after: [a]}
  - {name: d, kind: jsonl, path: d, identity_fields: {email: e}, erase_after: [a]}
)yaml",
                                                         "/");
  ASSERT_FALSE(inventory.ok());
  EXPECT_THAT(std::string(inventory.status().message()),
              HasSubstr("cycle in erase_after: a -> b -> c -> a"));
}

TEST(InventoryTest, RejectsDocumentsWithoutStores) {
  for (const char* yaml : {"", "[]", "controller: x", "stores: []"}) {
    absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, "/");
    EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument)
        << yaml;
  }
}

class InventoryFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/inventory_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(InventoryFileTest, ResolvesPathsAgainstTheFilesDirectory) {
  std::string path = dir_ + "/inventory.yaml";
  ASSERT_TRUE(WriteFileAtomically(path, kShop).ok());
  absl::StatusOr<Inventory> inventory = Inventory::LoadFile(path);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->stores()[0].path, dir_ + "/accounts.db");
  EXPECT_EQ(inventory->stores()[2].path, dir_ + "/logs/activity.jsonl");
}

TEST_F(InventoryFileTest, MissingFileIsNotFound) {
  absl::StatusOr<Inventory> inventory =
      Inventory::LoadFile(dir_ + "/nope.yaml");
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(InventoryFileTest, ErrorsNameTheFile) {
  std::string path = dir_ + "/inventory.yaml";
  ASSERT_TRUE(
      WriteFileAtomically(path, ShopWith("kind: jsonl", "kind: csv")).ok());
  absl::StatusOr<Inventory> inventory = Inventory::LoadFile(path);
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inventory.status().message()),
              HasSubstr(path + ": stores[2]"));
}

TEST(InventoryTest, NullStoreHasIdentityFieldsAndNothingToOpen) {
  const std::string placeholder = R"yaml(
  - name: placeholder
    kind: "null"
    identity_fields: {email: email}
    pii_fields: {email: contact}
    identities_from: [accounts]
)yaml";
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(std::string(kShop) + placeholder, "/base");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const StoreSpec* store = inventory->Find("placeholder");
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(IsNullStore(*store));
  EXPECT_FALSE(IsNullStore(*inventory->Find("accounts")));
  EXPECT_TRUE(store->path.empty());
  ASSERT_EQ(store->collections.size(), 1u);
  EXPECT_EQ(store->collections[0].name, "placeholder");
  EXPECT_THAT(store->collections[0].identity_fields,
              ElementsAre(Pair("email", "email")));

  auto error_of = [&](const std::string& from, const std::string& to) {
    return ErrorWith(std::string(kShop) + placeholder, from, to);
  };
  // A path means a real store was meant: refused rather than ignored.
  EXPECT_THAT(error_of("kind: \"null\"\n", "kind: \"null\"\n    path: a.db\n"),
              HasSubstr("stores[3] (\"placeholder\").path: a null store holds "
                        "nothing and has nothing to open"));
  EXPECT_THAT(error_of("    identity_fields: {email: email}\n", ""),
              HasSubstr("(\"placeholder\").identity_fields: missing"));
  EXPECT_THAT(error_of("kind: \"null\"", "kind: null"),
              HasSubstr(".kind: missing (for a null store write kind: "
                        "\"null\", quoted)"));
  EXPECT_THAT(
      error_of("    identity_fields: {email: email}\n    pii_fields: "
               "{email: contact}\n",
               "    tables:\n      - name: users\n        identity_fields: "
               "{email: email}\n"),
      HasSubstr(".tables: a null store has no tables"));
  EXPECT_THAT(
      error_of("    pii_fields: {email: contact}\n",
               "    pii_fields: {email: contact}\n    record_key: id\n"),
      HasSubstr(".record_key: a null store holds no record"));
}

TEST(InventoryTest, ManualStoreHasAnOwnerInstructionsAndIdentityKinds) {
  const std::string archive = R"yaml(
  - name: archive
    kind: manual
    owner: "records-office@example.com"
    instructions: "Search the paper archive; shred what matches."
    identity_kinds: [email, user_id]
    due_within: 7d
    purpose: "Paper forms"
    identities_from: [accounts]
)yaml";
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(std::string(kShop) + archive, "/base");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const StoreSpec* store = inventory->Find("archive");
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(IsManualStore(*store));
  EXPECT_EQ(store->owner, "records-office@example.com");
  EXPECT_EQ(store->due_within, absl::Hours(24 * 7));
  EXPECT_TRUE(store->path.empty());
  ASSERT_EQ(store->collections.size(), 1u);
  EXPECT_THAT(store->collections[0].identity_fields,
              ElementsAre(Pair("email", "email"), Pair("user_id", "user_id")));
  EXPECT_FALSE(IsManualStore(*inventory->Find("accounts")));

  auto error_of = [&](const std::string& from, const std::string& to) {
    return ErrorWith(std::string(kShop) + archive, from, to);
  };
  EXPECT_THAT(error_of("    owner: \"records-office@example.com\"\n", ""),
              HasSubstr("stores[3] (\"archive\").owner: missing"));
  EXPECT_THAT(error_of("    identity_kinds: [email, user_id]\n", ""),
              HasSubstr(".identity_kinds: missing"));
  EXPECT_THAT(error_of("due_within: 7d", "due_within: soon"),
              HasSubstr(".due_within: \"soon\" is not a duration"));
  EXPECT_THAT(error_of("due_within: 7d", "due_within: 400d"),
              HasSubstr("between 1m and 366d"));
  EXPECT_THAT(error_of("due_within: 7d", "path: /data/archive"),
              HasSubstr(".path: a manual store has no connector"));
  // A connector's store may not borrow the manual keys.
  EXPECT_THAT(
      Inventory::Parse(
          ShopWith("    identities_from: []\n", "    owner: someone\n"),
          "/base")
          .status()
          .message(),
      HasSubstr("(\"accounts\").owner: only a manual store has this key"));
  EXPECT_TRUE(Inventory::Parse(
                  absl::StrReplaceAll(std::string(kShop) + archive,
                                      {{"due_within: 7d", "due_within: 72h"}}),
                  "/base")
                  .ok());
}

constexpr char kPostgres[] = R"yaml(
masking_key_file: keys/masking.key
stores:
  - name: crm
    kind: postgres
    connection:
      host: db.internal
      port: 5433
      dbname: crm
      user: dsar
      password_file: secrets/crm.password
      sslrootcert: /etc/ssl/crm-ca.pem
    schema: sales
    tables:
      - name: invoices
        identity_fields: {email: email, user_id: customer_id}
        pii_fields: {full_name: identity, note: other, amount: financial}
        erase:
          mode: mask
          fields:
            email: hash
            customer_id: null
            full_name: random
            note: {fixed: "[erased]"}
            amount: {keep: "Tax law: HGB 257, 10 years"}
      - name: sessions
        identity_fields: {user_id: customer_id}
        erase: {mode: delete}
)yaml";

std::string PostgresWith(const std::string& from, const std::string& to) {
  std::string yaml = kPostgres;
  EXPECT_NE(yaml.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(yaml, {{from, to}});
}

TEST(InventoryPostgresTest, ReadsConnectionSchemaAndMasks) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(kPostgres, "/srv");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const StoreSpec& store = inventory->stores()[0];
  EXPECT_EQ(store.kind, "postgres");
  EXPECT_EQ(store.path, "");
  EXPECT_EQ(store.schema, "sales");
  EXPECT_EQ(store.connection.host, "db.internal");
  EXPECT_EQ(store.connection.port, "5433");
  EXPECT_EQ(store.connection.dbname, "crm");
  EXPECT_EQ(store.connection.user, "dsar");
  EXPECT_EQ(store.connection.password_file, "/srv/secrets/crm.password");
  EXPECT_EQ(store.connection.sslmode, "verify-full");  // The default.
  EXPECT_EQ(store.connection.sslrootcert, "/etc/ssl/crm-ca.pem");
  EXPECT_EQ(store.masking_key_file, "/srv/keys/masking.key");

  const CollectionSpec& invoices = store.collections[0];
  EXPECT_TRUE(invoices.mask_on_erase);
  ASSERT_EQ(invoices.masks.size(), 5u);
  EXPECT_EQ(invoices.masks.at("email").strategy, MaskStrategy::kHash);
  EXPECT_EQ(invoices.masks.at("customer_id").strategy, MaskStrategy::kNull);
  EXPECT_EQ(invoices.masks.at("full_name").strategy, MaskStrategy::kRandom);
  EXPECT_EQ(invoices.masks.at("note").strategy, MaskStrategy::kFixed);
  EXPECT_EQ(invoices.masks.at("note").text, "[erased]");
  EXPECT_EQ(invoices.masks.at("amount").strategy, MaskStrategy::kKeep);
  EXPECT_EQ(invoices.masks.at("amount").text, "Tax law: HGB 257, 10 years");
  EXPECT_FALSE(store.collections[1].mask_on_erase);
}

TEST(InventoryPostgresTest, SchemaDefaultsToPublicAndSocketToNoTls) {
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(PostgresWith("    schema: sales\n", ""), "/srv");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->stores()[0].schema, "public");
  absl::StatusOr<Inventory> socket = Inventory::Parse(
      PostgresWith("host: db.internal", "host: /run/postgresql"), "/srv");
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->stores()[0].connection.sslmode, "disable");
}

TEST(InventoryPostgresTest, RefusesALiteralPasswordWithoutEchoingIt) {
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(PostgresWith("      password_file: secrets/crm.password",
                                    "      password: hunter2-secret"),
                       "/srv");
  ASSERT_FALSE(inventory.ok());
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inventory.status().message()),
              HasSubstr(R"(stores[0] ("crm").connection.password: a password )"
                        R"(is never written in the inventory)"));
  EXPECT_THAT(std::string(inventory.status().message()),
              ::testing::Not(HasSubstr("hunter2")));
}

class InventoryPostgresErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(InventoryPostgresErrorTest, NamesEntryAndField) {
  const BadCase& c = GetParam();
  absl::StatusOr<Inventory> inventory =
      Inventory::Parse(PostgresWith(c.from, c.to), "/srv");
  ASSERT_FALSE(inventory.ok());
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inventory.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InventoryPostgresErrorTest,
    ::testing::Values(
        BadCase{"      host: db.internal\n", "",
                R"(stores[0] ("crm").connection.host: missing)"},
        BadCase{"      dbname: crm\n", "",
                R"(stores[0] ("crm").connection.dbname: missing)"},
        BadCase{"port: 5433", "port: 70000",
                R"(stores[0] ("crm").connection.port: "70000" is not a port)"},
        BadCase{"      user: dsar\n", "      user: dsar\n      sslmode: on\n",
                R"(stores[0] ("crm").connection.sslmode: unknown mode "on")"},
        BadCase{"      user: dsar\n", "      usr: dsar\n",
                R"(stores[0] ("crm").connection: unknown key "usr")"},
        BadCase{
            "      password_file: secrets/crm.password",
            "      password_file: a\n      password_env: B",
            R"(stores[0] ("crm").connection: give password_file or password_env, not both)"},
        BadCase{
            "    connection:\n", "    path: crm.db\n    connection:\n",
            R"(stores[0] ("crm").path: a postgres store is reached through connection)"},
        BadCase{
            "            note: {fixed: \"[erased]\"}\n", "",
            R"(stores[0] ("crm").tables[0] ("invoices").erase.fields: no strategy for "note")"},
        BadCase{
            "            note: {fixed: \"[erased]\"}\n",
            "            note: {fixed: \"[erased]\"}\n            "
            "shoe_size: null\n",
            R"(tables[0] ("invoices").erase.fields.shoe_size: not one of the collection's pii_fields or identity_fields)"},
        BadCase{
            "email: hash", "email: scramble",
            R"(tables[0] ("invoices").erase.fields.email: unknown strategy "scramble")"},
        BadCase{
            "amount: {keep: \"Tax law: HGB 257, 10 years\"}",
            "amount: {keep: \"\"}",
            R"(tables[0] ("invoices").erase.fields.amount.keep: needs the legal reason)"},
        BadCase{
            "customer_id: null", "customer_id: {keep: \"audit\"}",
            R"(tables[0] ("invoices").erase.fields.email: random and hash need every identity field masked)"},
        BadCase{
            "mode: mask", "mode: scrub",
            R"(tables[0] ("invoices").erase.mode: unknown mode "scrub" (known: delete, mask))"},
        BadCase{
            "erase: {mode: delete}",
            "erase: {mode: delete, fields: {customer_id: null}}",
            R"(tables[1] ("sessions").erase.fields: only mode: mask masks fields)"},
        BadCase{
            "masking_key_file: keys/masking.key\n", "",
            R"(tables[0] ("invoices").erase.fields.email: hash needs the inventory's masking_key_file)"}));

TEST(InventoryMaskTest, AJsonlLogCannotBeMasked) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      ShopWith("    pii_fields: {ip: online_identifiers}\n",
               "    pii_fields: {ip: online_identifiers}\n"
               "    erase: {mode: mask, fields: {user_id: null, ip: null}}\n"),
      "/srv");
  ASSERT_FALSE(inventory.ok());
  EXPECT_THAT(std::string(inventory.status().message()),
              HasSubstr(R"(stores[2] ("activity").erase.mode: a jsonl log is )"
                        R"(erased by deleting lines)"));
}

// Found by the inventory fuzzer: an alias inside its own anchor makes a
// cyclic document, whose walk overflowed the stack.
TEST(InventoryAliasTest, AnAliasInsideItsOwnAnchorIsRefused) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
defaults: &fields
  tables: [ *fields ]
stores:
  - {name: one, kind: jsonl, path: one.jsonl, identity_fields: {email: e}}
)yaml",
                                                         "/srv/dsar");
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inventory.status().message(),
              HasSubstr("alias inside its own anchor"));
}

// Aliases of aliases multiply a few hundred bytes into millions of values.
TEST(InventoryAliasTest, AnAliasBombIsRefused) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&yaml, "a", i, ": &a", i, " [");
    for (int j = 0; j < 8; ++j)
      absl::StrAppend(&yaml, j ? ", " : "", "*a", i - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  absl::StrAppend(&yaml,
                  "stores:\n  - {name: one, kind: jsonl, path: one.jsonl, "
                  "identity_fields: {email: e}}\n");
  absl::Status status = Inventory::Parse(yaml, "/srv/dsar").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("once its aliases are expanded"));
}

// Anchors and aliases used as intended still load.
TEST(InventoryAliasTest, SharedDefaultsThroughAnAliasLoad) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: one, kind: jsonl, path: one.jsonl, identity_fields: &ids {email: e}}
  - {name: two, kind: jsonl, path: two.jsonl, identity_fields: *ids}
)yaml",
                                                         "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->stores().size(), 2u);
}

TEST(InventoryTest, PrivacyStatusDeclaration) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      ShopWith("        processing_flags: {restriction: restricted, "
               "objection: objected}\n",
               "        processing_flags: {restriction: restricted, "
               "objection: objected}\n"
               "        privacy_status:\n"
               "          field: privacy_status\n"
               "          opted_out: [opt_out, Erased]\n"
               "          restricted: [RESTRICTED]\n"
               "          scrubbed: [\"REDACTED\", \"[deleted]\"]\n"
               "          scrubbed_hashes: true\n"
               "        record_key: id\n"),
      "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const CollectionSpec& users = inventory->Find("accounts")->collections[0];
  ASSERT_TRUE(users.privacy_status.has_value());
  EXPECT_EQ(users.privacy_status->field, "privacy_status");
  // Lowercased: a record's status compares ignoring case.
  EXPECT_THAT(users.privacy_status->opted_out,
              ElementsAre("erased", "opt_out"));
  EXPECT_THAT(users.privacy_status->restricted, ElementsAre("restricted"));
  // Placeholders compare exactly: kept as written.
  EXPECT_THAT(users.privacy_status->scrubbed,
              ElementsAre("REDACTED", "[deleted]"));
  EXPECT_TRUE(users.privacy_status->scrubbed_hashes);
  EXPECT_EQ(users.record_key, "id");
  // Optional: the other collections declare none.
  EXPECT_FALSE(
      inventory->Find("orders")->collections[0].privacy_status.has_value());
  EXPECT_EQ(inventory->Find("orders")->collections[0].record_key, "");
}

TEST(InventoryTest, PrivacyStatusOnAJsonlStore) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(
      ShopWith("    processing_flags: {restriction: restricted}\n    "
               "identities_from: [accounts]\n",
               "    processing_flags: {restriction: restricted}\n"
               "    privacy_status: {field: status, opted_out: [opt_out]}\n"
               "    identities_from: [accounts]\n"),
      "/srv/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const CollectionSpec& log = inventory->Find("activity")->collections[0];
  ASSERT_TRUE(log.privacy_status.has_value());
  EXPECT_EQ(log.privacy_status->field, "status");
  EXPECT_FALSE(log.privacy_status->scrubbed_hashes);
}

TEST(InventoryTest, PrivacyStatusErrorsNameEntryAndField) {
  const std::string anchor =
      "        processing_flags: {restriction: restricted, objection: "
      "objected}\n";
  auto with = [&](const std::string& lines) {
    return Inventory::Parse(ShopWith(anchor, anchor + lines), "/srv/dsar")
        .status();
  };
  struct Case {
    std::string lines;
    std::string message;
  };
  const std::string where = "stores[0] (\"accounts\").tables[0] (\"users\")";
  for (const Case& c : std::vector<Case>{
           {"        privacy_status: opt_out\n",
            where + ".privacy_status: must be a map"},
           {"        privacy_status: {opted_out: [opt_out]}\n",
            where + ".privacy_status.field: missing"},
           {"        privacy_status: {field: status}\n",
            where + ".privacy_status.opted_out: missing"},
           {"        privacy_status: {field: status, opted_out: [a, A]}\n",
            where + ".privacy_status.opted_out: duplicate value \"A\""},
           {"        privacy_status: {field: status, opted_out: [opt_out], "
            "restricted: [OPT_OUT]}\n",
            where + ".privacy_status.restricted: \"opt_out\" is in opted_out"},
           {"        privacy_status: {field: status, opted_out: [x], "
            "scrubbed_hashes: maybe}\n",
            where + ".privacy_status.scrubbed_hashes: must be true or false"},
           {"        privacy_status: {field: status, opted_out: [x], "
            "typo: 1}\n",
            where + ".privacy_status: unknown key \"typo\""},
           {"        privacy_status: {field: full_name, opted_out: [x]}\n",
            where + ".privacy_status.field: \"full_name\" is a PII field"},
           {"        privacy_status: {field: id, opted_out: [x]}\n",
            where + ".privacy_status.field: \"id\" is the identity field of "
                    "\"user_id\""},
           {"        record_key: email\n",
            where + ".record_key: \"email\" holds personal data"},
           {"        record_key: full_name\n",
            where + ".record_key: \"full_name\" holds personal data"},
       }) {
    absl::Status status = with(c.lines);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.lines;
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << c.lines;
  }
}

}  // namespace
}  // namespace dsar
