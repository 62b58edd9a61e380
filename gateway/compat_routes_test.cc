#include "gateway/compat_routes.h"

#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

TEST(CompatRoutesTest, EmailCheck) {
  for (const char* good :
       {"person42@example.com", "a.b+tag@sub.example.org", "x_y@example.co"}) {
    EXPECT_TRUE(LooksLikeEmail(good)) << good;
  }
  for (const char* bad : {"", "plain", "@example.com", "a@", "a@b", "a@b.c",
                          "a..b@example.com", ".a@example.com", "a@-x.com",
                          "a@x..com", "a b@example.com", "a@example.c0m"}) {
    EXPECT_FALSE(LooksLikeEmail(bad)) << bad;
  }
}

TEST(CompatRoutesTest, FindsTheSeedRoutesWithTheirScopes) {
  CompatRoutes routes(nullptr);
  auto create = routes.Find("POST", "/dsar");
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->kind, CompatRoutes::Kind::kCreateJob);
  EXPECT_EQ(create->required_scope, "dsar.submit");
  auto events = routes.Find("GET", "/dsar/job-1/events");
  ASSERT_TRUE(events.has_value());
  EXPECT_EQ(events->kind, CompatRoutes::Kind::kJobEvents);
  EXPECT_EQ(events->bindings[0].value, "job-1");
  EXPECT_EQ(events->required_scope, "dsar.read");
  EXPECT_EQ(routes.Find("GET", "/dsar/job-1/download")->kind,
            CompatRoutes::Kind::kDownload);
  EXPECT_EQ(routes.Find("GET", "/dsar/job-1")->kind,
            CompatRoutes::Kind::kGetJob);
  EXPECT_EQ(routes.Find("POST", "/api/dsar/submit")->required_scope,
            "dsar.submit");
  EXPECT_FALSE(routes.Find("GET", "/dsar").has_value());
  EXPECT_FALSE(routes.Find("DELETE", "/dsar/job-1").has_value());
}

}  // namespace
}  // namespace dsar::gateway
