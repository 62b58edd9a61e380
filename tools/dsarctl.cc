// dsarctl: the operator's command-line client for dsard.
//
//   dsarctl [--addr=HOST:PORT] [-o table|json] <command> [args]
//
// Commands: submit, get, list, events, cancel, watch. Exit codes: 0 ok,
// 2 usage error, 3 not found, 4 coordinator unavailable, 1 other errors.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "storage/request_status.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitUnavailable = 4;

constexpr char kUsage[] =
    R"(usage: dsarctl [--addr=HOST:PORT] [-o table|json] [--timeout=SECONDS] <command> [args]

Commands:
  submit --type=ACCESS|PORTABILITY|ERASURE [--email=E] [--user-id=U] [--phone=P]
         [--custom=TYPE:VALUE] [--regulation=GDPR|CCPA] [--store=NAME]... [--idempotency-key=K]
      Records a request; prints it once it is durable.
      example: dsarctl submit --type=ACCESS --email=jane@example.com
  get <id>          Status, deadline and the per-store task table.
  list [--status=S] [--type=T] [--page-size=N] [--all]
  events <id>       The request's event history.
  cancel <id> [--reason=TEXT]
  watch <id> [--interval-ms=N]
                    Prints progress until the request is terminal.

Environment: DSAR_ADDR sets the default address (127.0.0.1:50051).
)";

struct Options {
  std::string addr = "127.0.0.1:50051";
  std::string output = "table";
  double timeout_seconds = 30;
  std::string command;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;
};

int Usage(const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "dsarctl: %s\n", message.c_str());
  std::fputs(kUsage, stderr);
  return kExitUsage;
}

int ExitFor(const grpc::Status& status) {
  std::fprintf(stderr, "dsarctl: %s: %s\n",
               status.error_code() == grpc::StatusCode::UNAVAILABLE
                   ? "unavailable"
                   : "error",
               status.error_message().c_str());
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitUsage;
    default:
      return kExitError;
  }
}

std::string Flag(const Options& options, const std::string& name,
                 const std::string& fallback = "") {
  auto it = options.flags.find(name);
  return it == options.flags.end() ? fallback : it->second;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.add_whitespace = true;
  print.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print);
  return json;
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0) return "-";
  return absl::FormatTime(
      "%Y-%m-%d %H:%M:%S",
      absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos()),
      absl::UTCTimeZone());
}

std::string ShortStep(dsar::v1::StepStatus status) {
  std::string name = dsar::v1::StepStatus_Name(status);
  return name == "STEP_FAILED" ? "FAILED" : name;
}

void PrintRequestTable(const dsar::v1::Request& request) {
  std::printf("Request   %s\n", request.id().c_str());
  std::printf("Type      %s (%s)\n",
              dsar::v1::RequestType_Name(request.type()).c_str(),
              request.regulation().c_str());
  std::printf("Status    %s",
              dsar::v1::RequestStatus_Name(request.status()).c_str());
  if (!request.current_state().empty() &&
      !dsar::IsTerminalStatus(request.status())) {
    std::printf(" (in %s)", request.current_state().c_str());
  }
  std::printf("\n");
  if (!request.error().empty()) {
    std::printf("Error     %s: %s\n", request.error().c_str(),
                request.cause().c_str());
  }
  std::printf("Created   %s UTC\n", FormatTime(request.created_at()).c_str());
  if (request.completed_at().seconds() != 0) {
    std::printf("Finished  %s UTC\n",
                FormatTime(request.completed_at()).c_str());
  }
  if (!request.steps().empty()) {
    std::printf("\n%-20s %-12s %-12s %-9s %-8s %-22s %s\n", "STEP", "STORE",
                "STATUS", "ATTEMPTS", "RECORDS", "WORKER", "ERROR");
    for (const dsar::v1::StoreStep& step : request.steps()) {
      std::string error = step.error().empty()
                              ? ""
                              : absl::StrCat(step.error(), ": ", step.cause());
      std::printf("%-20s %-12s %-12s %-9u %-8lld %-22s %s\n",
                  step.map_state().c_str(), step.store().c_str(),
                  ShortStep(step.status()).c_str(), step.attempts(),
                  static_cast<long long>(step.record_count()),
                  step.worker_id().c_str(), error.c_str());
    }
  }
  if (!request.bundle().path().empty()) {
    std::printf("\nBundle    %s (%lld bytes, sha256 %s)\n",
                request.bundle().path().c_str(),
                static_cast<long long>(request.bundle().size_bytes()),
                request.bundle().sha256().c_str());
    for (const std::string& file : request.bundle().files()) {
      std::printf("          %s\n", file.c_str());
    }
  }
}

class Client {
 public:
  explicit Client(const Options& options)
      : options_(options),
        stub_(dsar::v1::DsarService::NewStub(grpc::CreateChannel(
            options.addr, grpc::InsecureChannelCredentials()))) {}

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(
                              options_.timeout_seconds * 1000)));
  }

  dsar::v1::DsarService::Stub* stub() { return stub_.get(); }

 private:
  const Options& options_;
  std::unique_ptr<dsar::v1::DsarService::Stub> stub_;
};

int Print(const Options& options, const dsar::v1::Request& request) {
  if (options.output == "json") {
    std::printf("%s\n", ToJson(request).c_str());
  } else {
    PrintRequestTable(request);
  }
  return 0;
}

bool AddIdentity(dsar::v1::CreateRequestRequest* request,
                 dsar::v1::IdentityType type, const std::string& value,
                 const std::string& custom_type = "") {
  dsar::v1::SubjectIdentity* identity = request->add_identities();
  identity->set_type(type);
  identity->set_value(value);
  identity->set_custom_type(custom_type);
  return true;
}

int Submit(const Options& options, Client& client) {
  dsar::v1::CreateRequestRequest request;
  dsar::v1::RequestType type;
  std::string type_name = Flag(options, "type");
  if (type_name.empty()) return Usage("submit: --type is required");
  if (!dsar::v1::RequestType_Parse(type_name, &type)) {
    return Usage(absl::StrCat("submit: --type: unknown request type \"",
                              type_name, "\""));
  }
  request.set_type(type);
  for (const auto& [name, value] : options.flags) {
    if (name == "email") AddIdentity(&request, dsar::v1::EMAIL, value);
    if (name == "user-id") AddIdentity(&request, dsar::v1::USER_ID, value);
    if (name == "phone") AddIdentity(&request, dsar::v1::PHONE, value);
    if (name == "custom") {
      size_t colon = value.find(':');
      if (colon == std::string::npos)
        return Usage("submit: --custom takes TYPE:VALUE");
      AddIdentity(&request, dsar::v1::CUSTOM, value.substr(colon + 1),
                  value.substr(0, colon));
    }
    if (name == "store") request.add_stores(value);
  }
  request.set_regulation(Flag(options, "regulation"));
  request.set_idempotency_key(Flag(options, "idempotency-key"));
  grpc::ClientContext context;
  client.Prepare(&context);
  dsar::v1::Request response;
  grpc::Status status =
      client.stub()->CreateRequest(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output == "json") return Print(options, response);
  std::printf("%s\n", response.id().c_str());
  return 0;
}

grpc::Status Get(Client& client, const std::string& id,
                 dsar::v1::Request* response) {
  grpc::ClientContext context;
  client.Prepare(&context);
  dsar::v1::GetRequestRequest request;
  request.set_id(id);
  return client.stub()->GetRequest(&context, request, response);
}

int GetCommand(const Options& options, Client& client) {
  if (options.positional.size() != 1) return Usage("get: takes one request id");
  dsar::v1::Request response;
  grpc::Status status = Get(client, options.positional[0], &response);
  if (!status.ok()) return ExitFor(status);
  return Print(options, response);
}

int List(const Options& options, Client& client) {
  dsar::v1::ListRequestsRequest request;
  std::string status_name = Flag(options, "status");
  std::string type_name = Flag(options, "type");
  dsar::v1::RequestStatus status_filter;
  dsar::v1::RequestType type_filter;
  if (!status_name.empty()) {
    if (!dsar::v1::RequestStatus_Parse(status_name, &status_filter)) {
      return Usage(
          absl::StrCat("list: --status: unknown status \"", status_name, "\""));
    }
    request.set_status(status_filter);
  }
  if (!type_name.empty()) {
    if (!dsar::v1::RequestType_Parse(type_name, &type_filter)) {
      return Usage(
          absl::StrCat("list: --type: unknown type \"", type_name, "\""));
    }
    request.set_type(type_filter);
  }
  int page_size = 50;
  if (!Flag(options, "page-size").empty() &&
      !absl::SimpleAtoi(Flag(options, "page-size"), &page_size)) {
    return Usage("list: --page-size takes a number");
  }
  request.set_page_size(page_size);
  bool all = options.flags.count("all") > 0;
  if (options.output != "json") {
    std::printf("%-28s %-12s %-10s %-20s %s\n", "ID", "TYPE", "STATUS",
                "CREATED (UTC)", "STATE");
  }
  while (true) {
    grpc::ClientContext context;
    client.Prepare(&context);
    dsar::v1::ListRequestsResponse response;
    grpc::Status status =
        client.stub()->ListRequests(&context, request, &response);
    if (!status.ok()) return ExitFor(status);
    for (const dsar::v1::Request& item : response.requests()) {
      if (options.output == "json") {
        std::string json;
        google::protobuf::util::JsonPrintOptions print;
        print.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(item, &json, print);
        std::printf("%s\n", json.c_str());
      } else {
        std::printf("%-28s %-12s %-10s %-20s %s\n", item.id().c_str(),
                    dsar::v1::RequestType_Name(item.type()).c_str(),
                    dsar::v1::RequestStatus_Name(item.status()).c_str(),
                    FormatTime(item.created_at()).c_str(),
                    item.current_state().c_str());
      }
    }
    if (!all || response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return 0;
}

int Events(const Options& options, Client& client) {
  if (options.positional.size() != 1)
    return Usage("events: takes one request id");
  dsar::v1::ListEventsRequest request;
  request.set_request_id(options.positional[0]);
  request.set_page_size(1000);
  while (true) {
    grpc::ClientContext context;
    client.Prepare(&context);
    dsar::v1::ListEventsResponse response;
    grpc::Status status =
        client.stub()->ListEvents(&context, request, &response);
    if (!status.ok()) return ExitFor(status);
    for (const dsar::v1::Event& event : response.events()) {
      if (options.output == "json") {
        std::string json;
        google::protobuf::util::JsonPrintOptions print;
        print.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(event, &json, print);
        std::printf("%s\n", json.c_str());
      } else {
        std::printf(
            "%4llu %s  %-16s %-18s %-10s %s%s%s\n",
            static_cast<unsigned long long>(event.sequence()),
            FormatTime(event.time()).c_str(), event.kind().c_str(),
            event.state().c_str(), event.store().c_str(),
            event.attempt()
                ? absl::StrCat("attempt=", event.attempt(), " ").c_str()
                : "",
            event.worker_id().empty()
                ? ""
                : absl::StrCat("worker=", event.worker_id(), " ").c_str(),
            event.detail().c_str());
      }
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return 0;
}

int Cancel(const Options& options, Client& client) {
  if (options.positional.size() != 1)
    return Usage("cancel: takes one request id");
  dsar::v1::CancelRequestRequest request;
  request.set_id(options.positional[0]);
  request.set_reason(Flag(options, "reason"));
  grpc::ClientContext context;
  client.Prepare(&context);
  dsar::v1::Request response;
  grpc::Status status =
      client.stub()->CancelRequest(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  return Print(options, response);
}

int Watch(const Options& options, Client& client) {
  if (options.positional.size() != 1)
    return Usage("watch: takes one request id");
  int interval_ms = 200;
  if (!Flag(options, "interval-ms").empty() &&
      !absl::SimpleAtoi(Flag(options, "interval-ms"), &interval_ms)) {
    return Usage("watch: --interval-ms takes a number");
  }
  std::string last;
  while (true) {
    dsar::v1::Request request;
    grpc::Status status = Get(client, options.positional[0], &request);
    if (!status.ok()) return ExitFor(status);
    int done = 0;
    for (const dsar::v1::StoreStep& step : request.steps()) {
      if (step.status() == dsar::v1::SUCCEEDED ||
          step.status() == dsar::v1::STEP_FAILED ||
          step.status() == dsar::v1::SKIPPED) {
        ++done;
      }
    }
    std::string line =
        absl::StrFormat("%s %-9s %-20s steps %d/%d", request.id(),
                        dsar::v1::RequestStatus_Name(request.status()),
                        request.current_state(), done, request.steps_size());
    if (line != last) {
      if (options.output == "json") {
        std::string json;
        google::protobuf::util::JsonPrintOptions print;
        print.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(request, &json,
                                                          print);
        std::printf("%s\n", json.c_str());
      } else {
        std::printf("%s\n", line.c_str());
      }
      std::fflush(stdout);
      last = line;
    }
    if (dsar::IsTerminalStatus(request.status())) {
      if (options.output != "json") {
        std::printf("\n");
        PrintRequestTable(request);
      }
      return request.status() == dsar::v1::COMPLETED ? 0 : kExitError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (const char* addr = std::getenv("DSAR_ADDR")) options.addr = addr;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "help")
      return Usage("") == kExitUsage ? 0 : 0;
    if (arg == "-o" && i + 1 < argc) {
      options.output = argv[++i];
      continue;
    }
    if (absl::StartsWith(arg, "--")) {
      std::string name = arg.substr(2);
      std::string value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (name != "all" && i + 1 < argc) {
        value = argv[++i];
      }
      if (name == "addr") {
        options.addr = value;
      } else if (name == "output") {
        options.output = value;
      } else if (name == "timeout") {
        if (!absl::SimpleAtod(value, &options.timeout_seconds)) {
          return Usage("--timeout takes seconds");
        }
      } else {
        options.flags.emplace(name, value);
      }
      continue;
    }
    if (options.command.empty()) {
      options.command = arg;
    } else {
      options.positional.push_back(arg);
    }
  }
  if (options.output != "table" && options.output != "json") {
    return Usage("-o takes table or json");
  }
  Client client(options);
  if (options.command == "submit") return Submit(options, client);
  if (options.command == "get") return GetCommand(options, client);
  if (options.command == "list") return List(options, client);
  if (options.command == "events") return Events(options, client);
  if (options.command == "cancel") return Cancel(options, client);
  if (options.command == "watch") return Watch(options, client);
  return Usage(options.command.empty()
                   ? "a command is required"
                   : absl::StrCat("unknown command \"", options.command, "\""));
}
