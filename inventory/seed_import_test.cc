#include "inventory/seed_import.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inventory/inventory.h"

namespace dsar {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

// Seed 003's data-inventory.yaml as the seed prints it (its list items at
// the key's indentation, which YAML allows).
constexpr char kSeed003[] = R"yaml(# data-inventory.yaml
data_stores:
- name: user_profiles
  type: PostgreSQL
  contains_pii: true
  pii_fields:
  - email
  - full_name
  - phone_number
  - ip_address
  retention_policy: "7 years after deletion"
- name: session_logs
  type: Elasticsearch
  contains_pii: true
  pii_fields:
  - ip_address
  - user_agent
  retention_policy: "90 days"
- name: email_queue
  type: RabbitMQ
  contains_pii: true
  pii_fields:
  - recipient_email
  retention_policy: "30 days after delivery"
)yaml";

TEST(SeedImportTest, Seed003LoadsOnceItsBlanksAreFilledIn) {
  // Loaded as it is, dsar's loader names the first thing it does not know.
  EXPECT_THAT(Inventory::Parse(kSeed003, "/etc/dsar").status().message(),
              HasSubstr("unknown key \"data_stores\""));

  absl::StatusOr<ImportedInventory> imported = ImportSeedInventory(kSeed003);
  ASSERT_TRUE(imported.ok()) << imported.status();
  // Not loadable before the blanks are filled in, and the loader says so.
  absl::StatusOr<Inventory> unfilled =
      Inventory::Parse(imported->yaml, "/etc/dsar");
  EXPECT_THAT(unfilled.status().message(),
              AllOf(HasSubstr("inventory.stores[0]"),
                    HasSubstr("still \"<fill in>\"")));
  EXPECT_THAT(
      imported->to_fill,
      AllOf(
          Contains(HasSubstr("stores[0] (\"user_profiles\").connection.host")),
          Contains(HasSubstr("stores[1] (\"session_logs\").owner")),
          Contains(HasSubstr("stores[1] (\"session_logs\").identity_kinds"))));

  // Filled in (here all with one value), it loads.
  std::string filled =
      absl::StrReplaceAll(imported->yaml, {{"\"<fill in>\"", "\"filled\""}});
  absl::StatusOr<Inventory> inventory = Inventory::Parse(filled, "/etc/dsar");
  ASSERT_TRUE(inventory.ok()) << inventory.status() << "\n" << filled;
  ASSERT_EQ(inventory->stores().size(), 3u);
  const StoreSpec& profiles = inventory->stores()[0];
  EXPECT_EQ(profiles.kind, "postgres");
  EXPECT_EQ(profiles.retention, "7 years after deletion");
  ASSERT_EQ(profiles.collections.size(), 1u);
  EXPECT_THAT(profiles.collections[0].identity_fields,
              AllOf(Contains(Pair("email", "email")),
                    Contains(Pair("phone", "phone_number"))));
  EXPECT_THAT(profiles.collections[0].pii_fields,
              AllOf(Contains(Pair("full_name", "identity")),
                    Contains(Pair("ip_address", "online_identifiers")),
                    Contains(Pair("email", "contact"))));
  // No connector for Elasticsearch or RabbitMQ: manual stores.
  const StoreSpec& logs = inventory->stores()[1];
  EXPECT_TRUE(IsManualStore(logs));
  EXPECT_THAT(logs.instructions,
              AllOf(HasSubstr("Elasticsearch"), HasSubstr("user_agent")));
  EXPECT_EQ(logs.retention, "90 days");
  const StoreSpec& queue = inventory->stores()[2];
  EXPECT_TRUE(IsManualStore(queue));
  EXPECT_THAT(queue.collections[0].identity_fields,
              Contains(Pair("email", "email")));
}

TEST(SeedImportTest, RefusesOtherShapesNamingTheEntry) {
  EXPECT_THAT(ImportSeedInventory("stores: []").status().message(),
              HasSubstr("data_stores: missing"));
  EXPECT_THAT(
      ImportSeedInventory("data_stores:\n- name: a\n").status().message(),
      HasSubstr("data_stores[0].type: missing"));
  EXPECT_THAT(ImportSeedInventory("data_stores:\n- name: a\n  type: X\n"
                                  "  pii: [b]\n")
                  .status()
                  .message(),
              HasSubstr("data_stores[0]: unknown key \"pii\""));
  absl::StatusOr<ImportedInventory> skipped = ImportSeedInventory(
      "data_stores:\n- name: metrics\n  type: Prometheus\n"
      "  contains_pii: false\n");
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_THAT(skipped->skipped, Contains(HasSubstr("\"metrics\"")));
}

}  // namespace
}  // namespace dsar
