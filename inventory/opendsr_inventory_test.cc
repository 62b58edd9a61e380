// The inventory's "opendsr" store kind and executor groups
// (docs/inventory.md, "OpenDSR services" and "Executor groups").

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inventory/inventory.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kServices[] = R"yaml(
stores:
  - name: billing
    kind: opendsr
    purpose: "Invoices"
    opendsr:
      url: https://billing.internal:8443/v1/
      processor_domain: opendsr.billing.internal
      signing_ca: pki/ca.pem
      tls_ca: /etc/pki/internal.pem
      client_cert: pki/client.pem
      client_key: pki/client.key
      poll_interval_ms: 250
      status_callback_url: https://dsar.example.com/opendsr/v1/callbacks
    identity_fields: {email: email, user_id: controller_customer_id}
    pii_fields: {invoices: financial}
)yaml";

TEST(OpenDsrInventoryTest, ParsesTheServiceAndItsIdentityMapping) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(kServices, "/srv");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const StoreSpec& store = inventory->stores()[0];
  EXPECT_EQ(store.kind, "opendsr");
  const OpenDsrSpec& spec = store.opendsr;
  EXPECT_EQ(spec.url, "https://billing.internal:8443/v1");
  EXPECT_EQ(store.path, spec.url);
  EXPECT_EQ(spec.processor_domain, "opendsr.billing.internal");
  EXPECT_EQ(spec.signing_ca_file, "/srv/pki/ca.pem");
  EXPECT_EQ(spec.tls_ca_file, "/etc/pki/internal.pem");
  EXPECT_EQ(spec.client_cert_file, "/srv/pki/client.pem");
  EXPECT_EQ(spec.client_key_file, "/srv/pki/client.key");
  EXPECT_EQ(spec.poll_interval_ms, 250);
  EXPECT_EQ(spec.status_callback_url,
            "https://dsar.example.com/opendsr/v1/callbacks");
  ASSERT_EQ(store.collections.size(), 1u);
  EXPECT_EQ(store.collections[0].name, "billing");
  EXPECT_THAT(store.collections[0].identity_fields,
              ElementsAre(Pair("email", "email"),
                          Pair("user_id", "controller_customer_id")));
}

struct BadService {
  std::string from;
  std::string to;
  std::string message;
};

void PrintTo(const BadService& c, std::ostream* os) { *os << c.message; }

class OpenDsrInventoryErrorTest : public ::testing::TestWithParam<BadService> {
};

TEST_P(OpenDsrInventoryErrorTest, NamesEntryAndField) {
  const BadService& c = GetParam();
  std::string yaml = kServices;
  size_t at = yaml.find(c.from);
  ASSERT_NE(at, std::string::npos) << c.from;
  yaml.replace(at, c.from.size(), c.to);
  absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, "/srv");
  ASSERT_FALSE(inventory.ok());
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inventory.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OpenDsrInventoryErrorTest,
    ::testing::Values(
        BadService{
            "url: https://billing.internal:8443/v1/",
            "url: http://billing.internal/v1",
            R"(stores[0] ("billing").opendsr.url: missing or not an https:// URL)"},
        BadService{
            "url: https://billing.internal:8443/v1/",
            "url: https://billing.internal/api",
            R"(stores[0] ("billing").opendsr.url: must name the API's major version)"},
        BadService{
            "      processor_domain: opendsr.billing.internal\n", "",
            R"(stores[0] ("billing").opendsr.processor_domain: missing)"},
        BadService{"      signing_ca: pki/ca.pem\n", "",
                   R"(stores[0] ("billing").opendsr.signing_ca: missing)"},
        BadService{"      client_key: pki/client.key\n", "",
                   "give both client_cert and client_key, or neither"},
        BadService{"poll_interval_ms: 250", "poll_interval_ms: soon",
                   R"(opendsr.poll_interval_ms: must be a whole number)"},
        BadService{
            "poll_interval_ms: 250", "poll_every: 250",
            R"(stores[0] ("billing").opendsr: unknown key "poll_every")"},
        BadService{
            "user_id: controller_customer_id", "user_id: customer_number",
            R"(stores[0] ("billing").identity_fields.user_id: "customer_number" is not an OpenDSR identity type)"},
        BadService{
            "    purpose: \"Invoices\"\n",
            "    purpose: \"Invoices\"\n    path: /x\n",
            R"(stores[0] ("billing").path: an opendsr store has no path)"},
        BadService{"    pii_fields: {invoices: financial}\n",
                   "    pii_fields: {invoices: financial}\n"
                   "  - name: logs\n    kind: jsonl\n    path: l\n"
                   "    identity_fields: {email: mail}\n"
                   "    opendsr: {url: https://x/v1}\n",
                   R"(stores[1] ("logs").opendsr: only for kind opendsr)"}));

TEST(OpenDsrInventoryTest, AGroupErasesItsStoresInFileOrder) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: a, kind: jsonl, path: a, identity_fields: {email: e}, group: users}
  - {name: b, kind: jsonl, path: b, identity_fields: {email: e}, group: shop}
  - {name: c, kind: jsonl, path: c, identity_fields: {email: e}, group: users}
  - {name: d, kind: jsonl, path: d, identity_fields: {email: e}, group: users,
     erase_after: [b]}
  - {name: e, kind: jsonl, path: e, identity_fields: {email: e}, group: shop}
)yaml",
                                                         "/");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_THAT(inventory->Find("a")->erase_after, ElementsAre());
  EXPECT_THAT(inventory->Find("c")->erase_after, ElementsAre("a"));
  EXPECT_THAT(inventory->Find("d")->erase_after, ElementsAre("b", "c"));
  EXPECT_THAT(inventory->Find("e")->erase_after, ElementsAre("b"));
  EXPECT_EQ(inventory->Find("d")->group, "users");
}

TEST(OpenDsrInventoryTest, AGroupThatContradictsEraseAfterIsACycle) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: a, kind: jsonl, path: a, identity_fields: {email: e}, group: g,
     erase_after: [b]}
  - {name: b, kind: jsonl, path: b, identity_fields: {email: e}, group: g}
)yaml",
                                                         "/");
  ASSERT_FALSE(inventory.ok());
  EXPECT_THAT(std::string(inventory.status().message()),
              HasSubstr("cycle in erase_after"));
}

}  // namespace
}  // namespace dsar
