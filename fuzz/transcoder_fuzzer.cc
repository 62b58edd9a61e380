// REST requests as dsar-gateway transcodes them: the route is found for the
// method and path, then BuildRequestMessage fills the request message from
// the path variables, the query string and the JSON body. The routes are
// those of the services dsar-gateway exposes (from their google.api.http
// annotations) plus the test echo service, which has a body bound to one
// field and well-known types. The input's body is also read as a backend
// answer (ResponseJson).
//
// Input: "<METHOD> <path>[?<name>=<value>&...]\n<body>". Names and values are
// taken as they are (the HTTP server has already decoded them).

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "dsar/v1/admin.pb.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "fuzz/fuzz_check.h"
#include "gateway/route_table.h"
#include "gateway/testdata/echo.pb.h"
#include "gateway/transcoder.h"
#include "nlohmann/json.hpp"

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const dsar::gateway::RouteTable& Routes() {
  static const dsar::gateway::RouteTable* table = [] {
    // Links the generated descriptors in.
    (void)dsar::v1::CreateRequestRequest::descriptor();
    (void)dsar::v1::GetCheckpointRequest::descriptor();
    (void)dsar::v1::ListWorkersRequest::descriptor();
    (void)dsar::test::EchoRequest::descriptor();
    absl::StatusOr<dsar::gateway::RouteTable> built =
        dsar::gateway::RouteTable::Build(
            {"dsar.v1.DsarService", "dsar.v1.AuditService",
             "dsar.v1.AdminService", "dsar.test.EchoService"},
            *google::protobuf::DescriptorPool::generated_pool());
    FUZZ_CHECK(built.ok(), built.status().ToString());
    return new dsar::gateway::RouteTable(*std::move(built));
  }();
  return *table;
}

// The top-level field named by the first part of a field path ("a" of
// "a.b"), by proto or JSON name.
const FieldDescriptor* TopLevelField(const google::protobuf::Descriptor* type,
                                     const std::string& path) {
  std::string first = path.substr(0, path.find('.'));
  const FieldDescriptor* field = type->FindFieldByName(first);
  return field != nullptr ? field : type->FindFieldByCamelcaseName(first);
}

void CheckRequest(const dsar::gateway::RouteMatch& match,
                  const dsar::gateway::QueryParams& query,
                  const Message& message) {
  const dsar::gateway::Route& route = *match.route;
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  FUZZ_CHECK(type == route.method->input_type(), type->full_name());
  const google::protobuf::Reflection* reflection = message.GetReflection();

  // A path variable bound to a top-level string field holds what the path
  // said, whatever the body said.
  for (const dsar::gateway::PathBinding& binding : match.bindings) {
    const FieldDescriptor* field = type->FindFieldByName(binding.field_path);
    if (field == nullptr || field->is_repeated() ||
        field->type() != FieldDescriptor::TYPE_STRING) {
      continue;
    }
    FUZZ_CHECK(reflection->GetString(message, field) == binding.value,
               binding.field_path);
  }

  // A body bound to one field sets that field only: whatever else is set
  // came from the path or the query string.
  if (!route.body.empty() && route.body != "*") {
    std::set<const FieldDescriptor*> allowed = {
        type->FindFieldByName(route.body)};
    for (const dsar::gateway::PathBinding& binding : match.bindings) {
      allowed.insert(TopLevelField(type, binding.field_path));
    }
    for (const auto& [name, value] : query) {
      allowed.insert(TopLevelField(type, name));
    }
    std::vector<const FieldDescriptor*> set;
    reflection->ListFields(message, &set);
    for (const FieldDescriptor* field : set) {
      FUZZ_CHECK(allowed.count(field) > 0, "the body bound to \"" + route.body +
                                               "\" set \"" + field->name() +
                                               "\"");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string request_line = input.substr(0, newline);
  std::string body =
      newline == std::string::npos ? "" : input.substr(newline + 1);
  size_t space = request_line.find(' ');
  if (space == std::string::npos) return 0;
  std::string method = request_line.substr(0, space);
  std::string target = request_line.substr(space + 1);
  size_t question = target.find('?');
  std::string path = target.substr(0, question);
  dsar::gateway::QueryParams query;
  if (question != std::string::npos) {
    for (absl::string_view pair :
         absl::StrSplit(target.substr(question + 1), '&', absl::SkipEmpty())) {
      size_t equals = pair.find('=');
      query.emplace(std::string(pair.substr(0, equals)),
                    equals == absl::string_view::npos
                        ? std::string()
                        : std::string(pair.substr(equals + 1)));
    }
  }

  absl::StatusOr<dsar::gateway::RouteMatch> match = Routes().Find(method, path);
  if (!match.ok()) {
    FUZZ_CHECK(match.status().code() == absl::StatusCode::kNotFound ||
                   match.status().code() == absl::StatusCode::kUnimplemented,
               match.status().ToString());
    return 0;
  }
  absl::StatusOr<std::unique_ptr<Message>> message =
      dsar::gateway::BuildRequestMessage(*match, query, body);
  if (message.ok()) {
    CheckRequest(*match, query, **message);
  } else {
    FUZZ_CHECK(message.status().code() == absl::StatusCode::kInvalidArgument,
               message.status().ToString());
  }

  // The body read as the backend's serialized answer.
  absl::StatusOr<std::string> json =
      dsar::gateway::ResponseJson(*match->route, body);
  if (json.ok()) {
    FUZZ_CHECK(nlohmann::json::accept(*json), *json);
  } else {
    FUZZ_CHECK(json.status().code() == absl::StatusCode::kInternal,
               json.status().ToString());
  }
  return 0;
}
