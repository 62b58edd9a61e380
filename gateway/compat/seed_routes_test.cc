#include "gateway/compat/seed_routes.h"

#include "gtest/gtest.h"

namespace dsar::gateway::compat {
namespace {

TEST(SeedRoutesTest, FindsTheSeedRoutesWithTheirScopes) {
  SeedRoutes routes(nullptr);
  auto create = routes.Find("POST", "/dsar");
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->route, SeedRoutes::kCreateJob);
  EXPECT_EQ(create->required_scope, "dsar.submit");
  auto events = routes.Find("GET", "/dsar/job-1/events");
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->route, SeedRoutes::kJobEvents);
  EXPECT_EQ(events->bindings[0].value, "job-1");
  EXPECT_EQ(events->required_scope, "dsar.read");
  EXPECT_EQ(routes.Find("GET", "/dsar/job-1/download")->route,
            SeedRoutes::kDownload);
  EXPECT_EQ(routes.Find("GET", "/dsar/job-1")->route, SeedRoutes::kGetJob);
  EXPECT_EQ(routes.Find("POST", "/api/dsar/submit")->route,
            SeedRoutes::kSubmit);
  EXPECT_EQ(routes.Find("POST", "/api/dsar/submit")->required_scope,
            "dsar.submit");
  EXPECT_FALSE(routes.Find("GET", "/dsar").has_value());
  EXPECT_FALSE(routes.Find("DELETE", "/dsar/job-1").has_value());
  EXPECT_FALSE(routes.Find("POST", "/v1/requests").has_value());
}

TEST(SeedRoutesTest, CoordinatorFieldErrorsPointAtTheFormsFields) {
  nlohmann::json email = SubmitErrorsForCoordinatorError(
      absl::InvalidArgumentError("identities[0].value: not a valid email "
                                 "address"));
  ASSERT_EQ(email["errors"].size(), 1u);
  EXPECT_EQ(email["errors"][0]["path"], "email");
  EXPECT_EQ(email["errors"][0]["msg"], "not a valid email address");
  EXPECT_EQ(email["errors"][0]["type"], "field");
  EXPECT_EQ(email["errors"][0]["location"], "body");

  nlohmann::json type = SubmitErrorsForCoordinatorError(
      absl::InvalidArgumentError("type: required"));
  EXPECT_EQ(type["errors"][0]["path"], "requestType");

  // A field the form does not have keeps dsard's name.
  nlohmann::json corrections = SubmitErrorsForCoordinatorError(
      absl::InvalidArgumentError("corrections: required for RECTIFICATION"));
  EXPECT_EQ(corrections["errors"][0]["path"], "corrections");
  EXPECT_EQ(corrections["errors"][0]["msg"], "required for RECTIFICATION");

  nlohmann::json no_field = SubmitErrorsForCoordinatorError(
      absl::InvalidArgumentError("something else went wrong"));
  EXPECT_EQ(no_field["errors"][0]["path"], "");
  EXPECT_EQ(no_field["errors"][0]["msg"], "something else went wrong");
}

}  // namespace
}  // namespace dsar::gateway::compat
