#include "gateway/compat/seed_routes.h"

#include <memory>

#include "gmock/gmock.h"
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

// Found by fuzz/seed_routes_fuzzer (corpus create-nested-action): an
// `action` that is not a string threw out of the handler, a 500.
TEST(SeedRoutesTest, ANonStringActionIsAFieldError) {
  // Refused before any call, so the coordinator need not exist.
  SeedRoutes routes(
      std::make_shared<const BackendClient>("127.0.0.1:1", absl::Seconds(1)));
  Caller caller;
  caller.subject = "service";
  caller.scopes = {"dsar.submit", "dsar.service"};
  for (const char* action : {R"([[["export"]]])", "{}", "7", "true"}) {
    HttpRequest request;
    request.method = "POST";
    request.path = "/dsar";
    request.body = std::string(R"({"user_id":"7","action":)") + action + "}";
    HttpReply reply =
        routes.Serve(*routes.Find("POST", "/dsar"), request, caller);
    EXPECT_EQ(reply.status, 400) << action;
    EXPECT_THAT(reply.body, ::testing::HasSubstr("action")) << action;
  }
}

}  // namespace
}  // namespace dsar::gateway::compat
