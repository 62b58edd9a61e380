#include "workers/connectors/null_store.h"

#include <atomic>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

using ::testing::IsEmpty;

StoreSpec NullStore() {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - name: placeholder
    kind: "null"
    identity_fields: {email: email, user_id: user_id}
    pii_fields: {email: contact}
    processing_flags: {restriction: restricted}
)yaml",
                                                         "/");
  EXPECT_TRUE(inventory.ok()) << inventory.status();
  return inventory->stores().at(0);
}

const std::vector<Identity> kSubject = {{"email", "jane@example.com"},
                                        {"user_id", "42"}};

TEST(NullStoreConnectorTest, CreateConnectorMakesOneForANullStore) {
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(NullStore());
  ASSERT_TRUE(connector.ok()) << connector.status();
  EXPECT_NE(dynamic_cast<NullStoreConnector*>(connector->get()), nullptr);
}

TEST(NullStoreConnectorTest, FindsNothingAndChangesNothing) {
  NullStoreConnector connector(NullStore(), nullptr);

  absl::StatusOr<ConnectorResult> found = connector.Discover(kSubject);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 0);
  EXPECT_THAT(found->discovered, IsEmpty());

  StringSink sink;
  absl::StatusOr<ConnectorResult> exported = connector.Export(kSubject, sink);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->record_count, 0);
  nlohmann::json document = nlohmann::json::parse(sink.text());
  EXPECT_EQ(document["store"], "placeholder");
  EXPECT_TRUE(document["records"].is_array());
  EXPECT_TRUE(document["records"].empty());

  // One entry per collection, as every connector's Erase answers.
  absl::StatusOr<EraseResult> erased = connector.Erase(kSubject);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_EQ(erased->collections.size(), 1u);
  EXPECT_EQ(erased->collections[0].collection, "placeholder");
  EXPECT_EQ(erased->record_count(), 0);

  absl::StatusOr<int64_t> rectified =
      connector.Rectify(kSubject, {{"", "email", "new@example.com"}});
  ASSERT_TRUE(rectified.ok()) << rectified.status();
  EXPECT_EQ(*rectified, 0);
  absl::StatusOr<int64_t> flagged =
      connector.SetProcessingFlag(kSubject, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
}

TEST(NullStoreConnectorTest, ACancelledOperationEndsCancelled) {
  std::atomic<bool> cancel{true};
  NullStoreConnector connector(NullStore(), &cancel);
  EXPECT_EQ(connector.Discover(kSubject).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(connector.Erase(kSubject).status().code(),
            absl::StatusCode::kCancelled);
  StringSink sink;
  EXPECT_EQ(connector.Export(kSubject, sink).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_THAT(sink.text(), IsEmpty());
  cancel = false;
  EXPECT_TRUE(connector.Discover(kSubject).ok());
}

}  // namespace
}  // namespace dsar
