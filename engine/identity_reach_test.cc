#include "engine/identity_reach.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// accounts: email, user_id, phone. orders: user_id, from accounts.
// marketing: email, from accounts. newsletter: email, no supplier.
constexpr char kInventoryYaml[] = R"yaml(
stores:
  - name: accounts
    kind: sqlite
    path: a.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id, phone: phone}
  - name: orders
    kind: sqlite
    path: o.db
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
    identities_from: [accounts]
  - name: marketing
    kind: sqlite
    path: m.db
    tables:
      - name: subscribers
        identity_fields: {email: email}
    identities_from: [accounts]
  - name: newsletter
    kind: jsonl
    path: n.jsonl
    identity_fields: {email: email}
)yaml";

class IdentityReachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Inventory> inventory = Inventory::Parse(kInventoryYaml, "/");
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::move(*inventory);
  }
  Inventory inventory_;
};

TEST_F(IdentityReachTest, StoresAreSearchedWithGivenAndSuppliedKinds) {
  auto reach = SearchableIdentityKinds(
      inventory_, {"accounts", "orders", "marketing", "newsletter"},
      {"user_id"});
  EXPECT_THAT(reach["accounts"], ElementsAre("user_id"));
  EXPECT_THAT(reach["orders"], ElementsAre("user_id"));
  EXPECT_THAT(reach["marketing"], ElementsAre("email"));
  EXPECT_THAT(reach["newsletter"], IsEmpty());
}

TEST_F(IdentityReachTest, ScopeWithoutTheSupplierIsRefused) {
  // Only orders, by email: orders matches user ids, which accounts supplies.
  absl::Status refused =
      CheckEveryStoreReachable(inventory_, {"orders"}, {"email"});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("store \"orders\""));
  EXPECT_THAT(refused.message(), HasSubstr("accounts"));
  EXPECT_TRUE(
      CheckEveryStoreReachable(inventory_, {"accounts", "orders"}, {"email"})
          .ok());
  EXPECT_TRUE(
      CheckEveryStoreReachable(inventory_, {"orders"}, {"user_id"}).ok());
  // A store nothing can supply is refused for kinds it does not match.
  absl::Status newsletter = CheckEveryStoreReachable(
      inventory_, {"accounts", "newsletter"}, {"phone"});
  EXPECT_EQ(newsletter.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(newsletter.message(), HasSubstr("give one of those identities"));
}

TEST_F(IdentityReachTest, WarnsForStoresSomeKindCannotReach) {
  std::vector<std::string> warnings = UnreachableStoreWarnings(inventory_);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("\"newsletter\""));
  EXPECT_THAT(warnings[0], HasSubstr("phone"));
  EXPECT_THAT(warnings[1], HasSubstr("user_id"));
}

}  // namespace
}  // namespace dsar
