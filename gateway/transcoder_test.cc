#include "gateway/transcoder.h"

#include "gateway/testdata/echo.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
namespace {

class TranscoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)test::EchoRequest::descriptor();
    absl::StatusOr<RouteTable> table =
        RouteTable::Build({"dsar.test.EchoService"},
                          *google::protobuf::DescriptorPool::generated_pool());
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
  }

  absl::StatusOr<test::EchoRequest> Build(const std::string& method,
                                          const std::string& path,
                                          const QueryParams& query,
                                          const std::string& body) {
    absl::StatusOr<RouteMatch> match = table_.Find(method, path);
    if (!match.ok()) return match.status();
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> message =
        BuildRequestMessage(*match, query, body);
    if (!message.ok()) return message.status();
    test::EchoRequest request;
    request.CopyFrom(**message);
    return request;
  }

  RouteTable table_;
};

TEST_F(TranscoderTest, PathAndQueryParameters) {
  absl::StatusOr<test::EchoRequest> request =
      Build("GET", "/v1/echo/hello",
            {{"repeat", "3"},
             {"tags", "a"},
             {"tags", "b"},
             {"inner.note", "n"},
             {"shout", "true"},
             {"at", "2024-01-02T03:04:05Z"}},
            "");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), "hello");
  EXPECT_EQ(request->repeat(), 3);
  ASSERT_EQ(request->tags_size(), 2);
  EXPECT_EQ(request->tags(1), "b");
  EXPECT_EQ(request->inner().note(), "n");
  EXPECT_TRUE(request->shout());
  EXPECT_EQ(request->at().seconds(), 1704164645);
}

TEST_F(TranscoderTest, JsonNamesWorkInTheQueryToo) {
  absl::StatusOr<test::EchoRequest> request =
      Build("GET", "/v1/echo/x", {{"inner.note", "a"}}, "");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->inner().note(), "a");
}

TEST_F(TranscoderTest, BadQueryParameters) {
  auto code_and_message = [&](const QueryParams& query) {
    absl::Status status = Build("GET", "/v1/echo/x", query, "").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_EQ(code_and_message({{"nope", "1"}}),
            "nope: no such field in the request");
  EXPECT_EQ(code_and_message({{"repeat", "many"}}).rfind("repeat: ", 0), 0u);
  EXPECT_EQ(code_and_message({{"repeat", "1"}, {"repeat", "2"}}),
            "repeat: given more than once");
  EXPECT_EQ(code_and_message({{"message", "y"}}),
            "message: already bound by the URL path");
  EXPECT_EQ(code_and_message({{"inner", "y"}}),
            "inner: a message field cannot be set from one URL value");
}

TEST_F(TranscoderTest, BodyStarFillsTheMessage) {
  absl::StatusOr<test::EchoRequest> request =
      Build("POST", "/v1/echo", {},
            R"({"message":"m","repeat":2,"tags":["x"],"inner":{"note":"q"}})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), "m");
  EXPECT_EQ(request->repeat(), 2);
  EXPECT_EQ(request->inner().note(), "q");
  // Every field is in the body: the query string is refused.
  EXPECT_EQ(Build("POST", "/v1/echo", {{"repeat", "1"}}, "{}").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TranscoderTest, BodyFieldAndPathVariable) {
  absl::StatusOr<test::EchoRequest> request =
      Build("POST", "/v1/echo/hi:note", {{"repeat", "2"}}, R"({"note":"n"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), "hi");
  EXPECT_EQ(request->inner().note(), "n");
  EXPECT_EQ(request->repeat(), 2);
}

// String fields set from the URL alone skip the JSON round trip; their
// values must come out byte for byte, JSON's special characters included,
// and still replace what the body said.
TEST_F(TranscoderTest, UrlStringsAreTakenAsTheyAre) {
  const std::string odd = "a\"b\\c\x01\n\t\xc3\xa9{}[]:,";
  absl::StatusOr<test::EchoRequest> request =
      Build("GET", "/v1/echo/" + odd,
            {{"tags", odd + "/"}, {"tags", ""}, {"inner.note", "null"}}, "");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), odd);
  ASSERT_EQ(request->tags_size(), 2);
  EXPECT_EQ(request->tags(0), odd + "/");
  EXPECT_EQ(request->tags(1), "");
  EXPECT_EQ(request->inner().note(), "null");

  request = Build("POST", "/v1/echo/hi:note", {{"inner.note", "from url"}},
                  R"({"note":"from body"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), "hi");
  EXPECT_EQ(request->inner().note(), "from url");

  // Duplicates are still refused.
  EXPECT_EQ(
      Build("GET", "/v1/echo/x", {{"inner.note", "a"}, {"inner.note", "b"}}, "")
          .status()
          .message(),
      "inner.note: given more than once");
  EXPECT_EQ(
      Build("GET", "/v1/echo/x", {{"message", "y"}}, "").status().message(),
      "message: already bound by the URL path");
}

// Found by fuzz/transcoder_fuzzer (fuzz/corpus/transcoder/
// echo_body_field_injection): the body of a route whose body is one field
// was spliced into {"inner": <body>}, so '{}, "tags": [...]' set tags too.
TEST_F(TranscoderTest, BodyBoundToOneFieldSetsNothingElse) {
  for (const char* body : {R"({"note":"x"}, "tags": ["injected"])",
                           R"({"note":"x"}, "message": "other")", R"({} {})"}) {
    absl::Status status = Build("POST", "/v1/echo/hi:note", {}, body).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(status.message(),
              "request body is not one JSON value (it is the field inner)");
  }
  EXPECT_TRUE(Build("POST", "/v1/echo/hi:note", {}, R"( {"note": "x"} )").ok());
}

// Found by fuzz/transcoder_fuzzer (fuzz/corpus/transcoder/
// echo_invalid_utf8): bytes that are not UTF-8 in a path variable or query
// value made nlohmann::json::dump throw out of BuildRequestMessage.
TEST_F(TranscoderTest, UrlValuesMustBeUtf8) {
  absl::Status status = Build("GET", "/v1/echo/\xff\xfe", {}, "").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "message: not valid UTF-8");
  for (const char* bad :
       {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80"}) {
    status = Build("GET", "/v1/echo/x", {{"tags", bad}}, "").status();
    EXPECT_EQ(status.message(), "tags: not valid UTF-8");
  }
  absl::StatusOr<test::EchoRequest> request =
      Build("GET", "/v1/echo/\xc3\xa9t\xc3\xa9",
            {{"tags", "\xe2\x82\xac"}, {"tags", "\xf0\x9f\x98\x80"}}, "");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->message(), "\xc3\xa9t\xc3\xa9");
}

// Found by fuzz/transcoder_fuzzer (fuzz/corpus/transcoder/
// echo_timestamp_then_seconds): "at=…&at.seconds=…" indexed the string
// already set for "at" as an object, and nlohmann::json threw.
TEST_F(TranscoderTest, FieldGivenWholeAndByPart) {
  absl::Status status =
      Build("GET", "/v1/echo/x",
            {{"at", "2024-01-02T03:04:05Z"}, {"at.seconds", "5"}}, "")
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "at.seconds: given more than once");
}

TEST_F(TranscoderTest, JsonErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* message;
  };
  for (const Case& c : {
           Case{R"({"mesage":"x"})", "mesage: unknown field"},
           Case{R"({"repeat":"lots"})", "repeat: "},
           Case{R"({"inner":{"nte":"x"}})", "inner.nte: unknown field"},
           Case{R"({"inner":{"note":5}})", "inner.note: "},
           Case{R"({"message":)", "request body is not a valid JSON object"},
           Case{R"([1,2])", "request body is not a valid JSON object"},
       }) {
    absl::Status status = Build("POST", "/v1/echo", {}, c.body).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(status.message().rfind(c.message, 0), 0u)
        << c.body << " gave " << status.message();
  }
  // A field-bound body: paths start at that field.
  absl::Status status =
      Build("POST", "/v1/echo/hi:note", {}, R"({"nte":"x"})").status();
  EXPECT_EQ(status.message(), "inner.nte: unknown field");
}

TEST_F(TranscoderTest, GetTakesNoBody) {
  EXPECT_EQ(Build("GET", "/v1/echo/x", {}, "{}").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Build("GET", "/v1/echo/x", {}, "  ").ok());
}

TEST_F(TranscoderTest, ResponseUsesTheProtobufJsonMapping) {
  absl::StatusOr<RouteMatch> match = table_.Find("GET", "/v1/echo/x");
  ASSERT_TRUE(match.ok());
  test::EchoResponse response;
  response.set_message("m");
  response.set_note("n");
  response.mutable_at()->set_seconds(1704164645);
  absl::StatusOr<std::string> json =
      ResponseJson(*match->route, response.SerializeAsString());
  ASSERT_TRUE(json.ok());
  nlohmann::json parsed = nlohmann::json::parse(*json);
  EXPECT_EQ(parsed["message"], "m");
  EXPECT_EQ(parsed["at"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(ResponseJson(*match->route, "\xff\xff").status().code(),
            absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace dsar::gateway
