#include "gateway/path_template.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;

auto Binding(const std::string& field, const std::string& value) {
  return ::testing::AllOf(Field(&PathBinding::field_path, field),
                          Field(&PathBinding::value, value));
}

PathTemplate Parsed(const std::string& text) {
  absl::StatusOr<PathTemplate> tmpl = PathTemplate::Parse(text);
  EXPECT_TRUE(tmpl.ok()) << text << ": " << tmpl.status();
  return *tmpl;
}

TEST(PathTemplateTest, LiteralsMatchExactly) {
  PathTemplate tmpl = Parsed("/v1/requests");
  EXPECT_THAT(tmpl.Match("/v1/requests"), ::testing::Optional(ElementsAre()));
  EXPECT_FALSE(tmpl.Match("/v1/requests/").has_value());
  EXPECT_FALSE(tmpl.Match("/v1/request").has_value());
  EXPECT_FALSE(tmpl.Match("/v1").has_value());
  EXPECT_FALSE(tmpl.Match("v1/requests").has_value());
}

TEST(PathTemplateTest, SimpleVariableBindsOneSegment) {
  PathTemplate tmpl = Parsed("/v1/requests/{id}");
  EXPECT_THAT(*tmpl.Match("/v1/requests/r-1"),
              ElementsAre(Binding("id", "r-1")));
  EXPECT_FALSE(tmpl.Match("/v1/requests/a/b").has_value());
  EXPECT_FALSE(tmpl.Match("/v1/requests/").has_value());
  EXPECT_FALSE(tmpl.Match("/v1/requests").has_value());
}

TEST(PathTemplateTest, VerbIsSplitFromTheLastSegment) {
  PathTemplate tmpl = Parsed("/v1/requests/{id}:cancel");
  EXPECT_THAT(*tmpl.Match("/v1/requests/r-1:cancel"),
              ElementsAre(Binding("id", "r-1")));
  EXPECT_FALSE(tmpl.Match("/v1/requests/r-1").has_value());
  EXPECT_FALSE(tmpl.Match("/v1/requests/r-1:retry").has_value());
  EXPECT_FALSE(tmpl.Match("/v1/requests/:cancel").has_value());
  EXPECT_EQ(tmpl.LiteralCount(), 3);
}

TEST(PathTemplateTest, VariableWithSegmentsAndNestedFieldPath) {
  PathTemplate tmpl = Parsed("/v1/{parent.name=shelves/*/books/*}/pages");
  EXPECT_THAT(*tmpl.Match("/v1/shelves/s1/books/b2/pages"),
              ElementsAre(Binding("parent.name", "shelves/s1/books/b2")));
  EXPECT_FALSE(tmpl.Match("/v1/shelves/s1/magazines/b2/pages").has_value());
  EXPECT_THAT(tmpl.VariableFieldPaths(), ElementsAre("parent.name"));
}

TEST(PathTemplateTest, DoubleWildcardTakesTheRest) {
  PathTemplate tmpl = Parsed("/files/{path=**}");
  EXPECT_THAT(*tmpl.Match("/files/a/b/c.txt"),
              ElementsAre(Binding("path", "a/b/c.txt")));
  EXPECT_THAT(*tmpl.Match("/files"), ElementsAre(Binding("path", "")));
  PathTemplate anonymous = Parsed("/v1/*/x/**");
  EXPECT_TRUE(anonymous.Match("/v1/any/x/1/2").has_value());
  EXPECT_FALSE(anonymous.Match("/v1/any/y/1").has_value());
}

TEST(PathTemplateTest, TwoVariables) {
  PathTemplate tmpl = Parsed("/v1/audit/{log}/entries/{index}");
  EXPECT_THAT(*tmpl.Match("/v1/audit/main/entries/42"),
              ElementsAre(Binding("log", "main"), Binding("index", "42")));
}

TEST(PathTemplateTest, RejectsMalformedTemplates) {
  for (const char* bad :
       {"", "v1/x", "/v1//x", "/v1/{id", "/v1/{}", "/v1/{1id}", "/v1/{a=}",
        "/v1/**/x", "/v1/{id}/{id}", "/v1/x:", "/v1/{a={b}}", "/v1/x/"}) {
    EXPECT_FALSE(PathTemplate::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace dsar::gateway
