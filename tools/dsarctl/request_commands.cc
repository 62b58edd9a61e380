// The request commands: submit, get, list, watch, events, cancel, retry.

#include <google/protobuf/util/message_differencer.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "model/event_kinds.h"
#include "storage/request_status.h"
#include "tools/dsarctl/audit.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {
namespace {

using dsar::v1::DsarService;
using dsar::v1::Event;
using dsar::v1::Request;
using dsar::v1::StoreStep;

std::unique_ptr<DsarService::Stub> NewStub(const Options& options) {
  return DsarService::NewStub(OpenChannel(options));
}

std::string ShortStep(dsar::v1::StepStatus status) {
  std::string name = dsar::v1::StepStatus_Name(status);
  return name == "STEP_FAILED" ? "FAILED" : name;
}

std::string StatusName(const Request& request) {
  return dsar::v1::RequestStatus_Name(request.status());
}

// Steps that succeeded: a request is done when all of them did.
bool StepSucceeded(const StoreStep& step) {
  return step.status() == dsar::v1::SUCCEEDED;
}

// Nothing more happens without an operator: finished, or stopped with
// failed or blocked stores.
bool Stopped(const Request& request) {
  return dsar::IsTerminalStatus(request.status()) ||
         request.status() == dsar::v1::NEEDS_ATTENTION;
}

// "2024-06-01 23:59:59 UTC (in 12d3h)" or, for a short column, "in 12d3h";
// red once an unfinished request is past it.
std::string DeadlineText(const Options& options, const Request& request,
                         bool long_form) {
  if (request.deadline().seconds() == 0) return "-";
  const absl::Duration left = ToAbslTime(request.deadline()) - absl::Now();
  std::string relative;
  Color color = Color::kNone;
  if (dsar::IsTerminalStatus(request.status())) {
    relative = "";
  } else if (left < absl::ZeroDuration()) {
    relative = absl::StrCat("OVERDUE by ", FormatAge(-left));
    color = Color::kRed;
  } else {
    relative = absl::StrCat("in ", FormatAge(left));
    if (left < absl::Hours(7 * 24)) color = Color::kYellow;
  }
  if (!long_form) {
    return Paint(options,
                 relative.empty()
                     ? FormatTimestamp(request.deadline()).substr(0, 10)
                     : relative,
                 color);
  }
  return absl::StrCat(
      FormatTimestamp(request.deadline()), " UTC",
      relative.empty()
          ? ""
          : absl::StrCat(" (", Paint(options, relative, color), ")"));
}

void PrintRequestTable(const Options& options, const Request& request) {
  auto field = [&](const char* name, const std::string& value) {
    std::printf(
        "%s  %s\n",
        Paint(options, absl::StrFormat("%-10s", name), Color::kBold).c_str(),
        value.c_str());
  };
  field("Request", request.id());
  field("Type", absl::StrCat(dsar::v1::RequestType_Name(request.type()), " (",
                             request.regulation(), ")"));
  std::string status =
      Paint(options, StatusName(request), StatusColor(StatusName(request)));
  if (!request.current_state().empty() &&
      !dsar::IsTerminalStatus(request.status())) {
    absl::StrAppend(&status, " (in ", request.current_state(), ")");
  }
  field("Status", status);
  if (!request.linked_to().empty()) {
    field("Linked to",
          absl::StrCat(request.linked_to(), " (answers this request too)"));
  }
  if (!request.error().empty()) {
    field("Error",
          Paint(options, absl::StrCat(request.error(), ": ", request.cause()),
                Color::kRed));
  }
  field("Created", absl::StrCat(FormatTimestamp(request.created_at()), " UTC"));
  if (request.deadline().seconds() != 0) {
    field("Deadline", DeadlineText(options, request, /*long_form=*/true));
    if (!request.extension_reason().empty()) {
      field("Extended",
            absl::StrCat("from ", FormatTimestamp(request.original_deadline()),
                         " UTC: ", request.extension_reason()));
    }
  }
  if (request.has_verification()) {
    field("Verified",
          absl::StrCat(
              request.verification().method(),
              request.verification().evidence_ref().empty()
                  ? ""
                  : absl::StrCat(" (", request.verification().evidence_ref(),
                                 ")"),
              " at ", FormatTimestamp(request.verification().verified_at()),
              " UTC"));
  } else if (request.status() == dsar::v1::VERIFYING &&
             request.verification_expires_at().seconds() != 0) {
    field("Verifying",
          absl::StrCat("waiting for the subject's code until ",
                       FormatTimestamp(request.verification_expires_at()),
                       " UTC"));
  }
  if (request.updated_at().seconds() != 0) {
    field("Updated",
          absl::StrCat(FormatTimestamp(request.updated_at()), " UTC"));
  }
  if (request.completed_at().seconds() != 0) {
    field("Finished",
          absl::StrCat(FormatTimestamp(request.completed_at()), " UTC"));
  }
  if (!request.stores().empty()) {
    field("Stores", absl::StrJoin(request.stores(), ", "));
  }
  if (!request.definition_version().empty()) {
    field("Workflow", request.definition_version());
  }
  if (!request.steps().empty()) {
    std::printf("\n");
    Table table(
        {"STEP", "STORE", "STATUS", "ATTEMPTS", "RECORDS", "WORKER", "ERROR"});
    for (const StoreStep& step : request.steps()) {
      std::string error = step.error().empty()
                              ? step.alert()
                              : absl::StrCat(step.error(), ": ", step.cause());
      std::string status_name = ShortStep(step.status());
      table.AddRow({step.map_state(),
                    step.store(),
                    {status_name, StatusColor(status_name)},
                    absl::StrCat(step.attempts()),
                    absl::StrCat(step.record_count()),
                    step.worker_id().empty() ? "-" : step.worker_id(),
                    {error, Color::kRed}});
    }
    table.Print(options);
    // What each erase step did, table by table.
    std::vector<std::string> erased;
    for (const StoreStep& step : request.steps()) {
      for (const dsar::v1::CollectionErasure& erasure : step.erasures()) {
        std::vector<std::string> parts;
        if (erasure.rows_deleted() > 0) {
          parts.push_back(absl::StrCat(erasure.rows_deleted(), " deleted"));
        }
        if (erasure.rows_masked() > 0) {
          parts.push_back(absl::StrCat(erasure.rows_masked(), " masked (",
                                       erasure.fields_masked(), " fields)"));
        }
        if (parts.empty()) parts.push_back("nothing to erase");
        erased.push_back(absl::StrCat(step.store(), ".", erasure.collection(),
                                      ": ", absl::StrJoin(parts, ", ")));
      }
    }
    if (!erased.empty()) {
      std::printf("\n");
      field("Erased", erased.front());
      for (size_t i = 1; i < erased.size(); ++i) {
        std::printf("            %s\n", erased[i].c_str());
      }
    }
  }
  if (!request.bundle().path().empty()) {
    std::printf("\n");
    field("Bundle",
          absl::StrCat(request.bundle().path(), " (",
                       request.bundle().size_bytes(), " bytes, sha256 ",
                       request.bundle().sha256(), ")"));
    for (const std::string& file : request.bundle().files()) {
      std::printf("            %s\n", file.c_str());
    }
  }
}

int PrintRequest(const Options& options, const Request& request) {
  if (options.output == "table") {
    PrintRequestTable(options, request);
  } else {
    PrintMessage(options, request);
  }
  return kExitOk;
}

grpc::Status GetRequest(DsarService::Stub& stub, const Options& options,
                        const std::string& id, Request* response) {
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::GetRequestRequest request;
  request.set_id(id);
  return stub.GetRequest(&context, request, response);
}

grpc::Status ListEvents(DsarService::Stub& stub, const Options& options,
                        const std::string& id, std::vector<Event>* events) {
  events->clear();
  dsar::v1::ListEventsRequest request;
  request.set_request_id(id);
  request.set_page_size(1000);
  while (true) {
    grpc::ClientContext context;
    options.Prepare(&context);
    dsar::v1::ListEventsResponse response;
    grpc::Status status = stub.ListEvents(&context, request, &response);
    if (!status.ok()) return status;
    events->insert(events->end(), response.events().begin(),
                   response.events().end());
    if (response.next_page_token().empty()) return grpc::Status::OK;
    request.set_page_token(response.next_page_token());
  }
}

// An enum value from its name, any case ("running" for RUNNING).
template <typename Enum, typename Parse>
bool ParseEnum(const std::string& text, Parse parse, Enum* value) {
  return !text.empty() && parse(absl::AsciiStrToUpper(text), value);
}

// A positive duration: anything absl::ParseDuration reads ("90m", "1h30m")
// or whole days ("7d").
bool ParseDays(const std::string& text, absl::Duration* duration) {
  int64_t days = 0;
  if (!text.empty() && text.back() == 'd' &&
      absl::SimpleAtoi(text.substr(0, text.size() - 1), &days)) {
    *duration = absl::Hours(24 * days);
  } else if (!absl::ParseDuration(text, duration)) {
    return false;
  }
  return *duration > absl::ZeroDuration();
}

// RFC 3339 ("2024-05-01T00:00:00Z") or a duration back from `now` ("24h",
// "90m", "1h30m", "7d").
bool ParseCreatedSince(const std::string& text, absl::Time now,
                       absl::Time* since, std::string* error) {
  std::string parse_error;
  if (absl::ParseTime(absl::RFC3339_full, text, since, &parse_error)) {
    return true;
  }
  absl::Duration ago;
  if (!ParseDays(text, &ago)) {
    *error = absl::StrCat(
        "\"", text,
        "\" is neither an RFC 3339 time (2024-05-01T00:00:00Z) nor a "
        "positive duration (90m, 24h, 7d)");
    return false;
  }
  *since = now - ago;
  return true;
}

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* timestamp) {
  const absl::Duration since_epoch = time - absl::UnixEpoch();
  const int64_t seconds =
      absl::ToInt64Seconds(absl::Floor(since_epoch, absl::Seconds(1)));
  timestamp->set_seconds(seconds);
  timestamp->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(since_epoch - absl::Seconds(seconds))));
}

std::string EventDetail(const Event& event) {
  std::vector<std::string> parts;
  if (event.attempt() != 0) {
    parts.push_back(absl::StrCat("attempt=", event.attempt()));
  }
  if (!event.worker_id().empty()) {
    parts.push_back(absl::StrCat("worker=", event.worker_id()));
  }
  if (!event.actor().empty())
    parts.push_back(absl::StrCat("by=", event.actor()));
  if (!event.detail().empty()) parts.push_back(event.detail());
  if (!event.note().empty()) {
    parts.push_back(absl::StrCat("note=\"", event.note(), "\""));
  }
  return absl::StrJoin(parts, " ");
}

Color EventColor(const std::string& kind) {
  if (kind.find("fail") != std::string::npos) return Color::kRed;
  if (kind.find("retr") != std::string::npos) return Color::kYellow;
  if (kind == dsar::kEventCompleted || kind == dsar::kEventTaskCompleted) {
    return Color::kGreen;
  }
  if (kind.find("cancel") != std::string::npos) return Color::kDim;
  return Color::kNone;
}

// "12:00:03 task_completed  accounts  attempt=1 worker=w1".
std::string EventLine(const Options& options, const Event& event) {
  std::string time =
      event.time().seconds() == 0
          ? "-"
          : absl::FormatTime("%H:%M:%S", ToAbslTime(event.time()),
                             absl::UTCTimeZone());
  return absl::StrCat(
      time, " ",
      Paint(options, absl::StrFormat("%-18s", event.kind()),
            EventColor(event.kind())),
      " ", absl::StrFormat("%-14s %-10s", event.state(), event.store()), " ",
      EventDetail(event));
}

// "[#######.............]" for `done` of `total`.
std::string ProgressBar(int done, int total, int width) {
  int filled = total == 0 ? 0 : done * width / total;
  return absl::StrCat("[", std::string(filled, '#'),
                      std::string(width - filled, '.'), "]");
}

}  // namespace

int RunSubmit(const Options& options) {
  if (!options.positional.empty()) {
    return Usage("submit: takes no arguments, only flags");
  }
  dsar::v1::CreateRequestRequest request;
  dsar::v1::RequestType type;
  const std::string type_name = options.Flag("type");
  if (type_name.empty()) return Usage("submit: --type is required");
  if (!ParseEnum(type_name, dsar::v1::RequestType_Parse, &type) ||
      type == dsar::v1::REQUEST_TYPE_UNSPECIFIED) {
    return Usage(absl::StrCat("submit: --type: unknown request type \"",
                              type_name, "\""));
  }
  request.set_type(type);
  auto add = [&](dsar::v1::IdentityType kind, const std::string& value,
                 const std::string& custom_type) {
    dsar::v1::SubjectIdentity* identity = request.add_identities();
    identity->set_type(kind);
    identity->set_value(value);
    identity->set_custom_type(custom_type);
  };
  for (const std::string& value : options.Flags("email")) {
    add(dsar::v1::EMAIL, value, "");
  }
  for (const std::string& value : options.Flags("user-id")) {
    add(dsar::v1::USER_ID, value, "");
  }
  for (const std::string& value : options.Flags("phone")) {
    add(dsar::v1::PHONE, value, "");
  }
  for (const std::string& value : options.Flags("custom")) {
    size_t colon = value.find(':');
    if (colon == std::string::npos || colon == 0) {
      return Usage("submit: --custom takes KIND:VALUE");
    }
    add(dsar::v1::CUSTOM, value.substr(colon + 1), value.substr(0, colon));
  }
  if (request.identities().empty()) {
    return Usage(
        "submit: at least one identity is required (--email, --user-id, "
        "--phone or --custom)");
  }
  for (const std::string& store : options.Flags("store")) {
    request.add_stores(store);
  }
  if (options.Has("verified-by")) {
    request.mutable_verified()->set_method(options.Flag("verified-by"));
    request.mutable_verified()->set_evidence_ref(options.Flag("evidence-ref"));
  } else if (options.Has("evidence-ref")) {
    return Usage("submit: --evidence-ref goes with --verified-by");
  }
  request.set_regulation(absl::AsciiStrToUpper(options.Flag("regulation")));
  request.set_idempotency_key(options.Flag("idempotency-key"));

  auto stub = NewStub(options);
  grpc::ClientContext context;
  options.Prepare(&context);
  Request response;
  grpc::Status status = stub->CreateRequest(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") return PrintRequest(options, response);
  std::printf("%s\n", response.id().c_str());
  return kExitOk;
}

int RunGet(const Options& options) {
  if (options.positional.size() != 1) return Usage("get: takes one request id");
  auto stub = NewStub(options);
  Request response;
  grpc::Status status =
      GetRequest(*stub, options, options.positional[0], &response);
  if (!status.ok()) return ExitFor(status);
  return PrintRequest(options, response);
}

int RunList(const Options& options) {
  if (!options.positional.empty()) return Usage("list: takes no arguments");
  dsar::v1::ListRequestsRequest request;
  if (options.Has("overdue") && options.Has("due-within")) {
    return Usage("list: --overdue and --due-within exclude each other");
  }
  if (options.Has("overdue") || options.Has("due-within")) {
    absl::Duration within = absl::ZeroDuration();
    if (options.Has("due-within") &&
        !ParseDays(options.Flag("due-within"), &within)) {
      return Usage(absl::StrCat("list: --due-within: \"",
                                options.Flag("due-within"),
                                "\" is not a positive duration (48h, 7d)"));
    }
    SetTimestamp(absl::Now() + within, request.mutable_due_before());
  }
  if (options.Has("status")) {
    dsar::v1::RequestStatus status;
    if (!ParseEnum(options.Flag("status"), dsar::v1::RequestStatus_Parse,
                   &status) ||
        status == dsar::v1::REQUEST_STATUS_UNSPECIFIED) {
      return Usage(absl::StrCat("list: --status: unknown status \"",
                                options.Flag("status"),
                                "\" (RECEIVED, VERIFYING, RUNNING, COMPLETED, "
                                "FAILED, CANCELLED)"));
    }
    request.set_status(status);
  }
  if (options.Has("type")) {
    dsar::v1::RequestType type;
    if (!ParseEnum(options.Flag("type"), dsar::v1::RequestType_Parse, &type) ||
        type == dsar::v1::REQUEST_TYPE_UNSPECIFIED) {
      return Usage(absl::StrCat("list: --type: unknown type \"",
                                options.Flag("type"), "\""));
    }
    request.set_type(type);
  }
  if (options.Has("created-since")) {
    absl::Time since;
    std::string error;
    if (!ParseCreatedSince(options.Flag("created-since"), absl::Now(), &since,
                           &error)) {
      return Usage(absl::StrCat("list: --created-since: ", error));
    }
    SetTimestamp(since, request.mutable_created_after());
  }
  int page_size = 50;
  if (options.Has("page-size") &&
      (!absl::SimpleAtoi(options.Flag("page-size"), &page_size) ||
       page_size < 1 || page_size > 1000)) {
    return Usage("list: --page-size takes a number from 1 to 1000");
  }
  request.set_page_size(page_size);
  request.set_page_token(options.Flag("page-token"));
  const bool all = options.Has("all");

  auto stub = NewStub(options);
  dsar::v1::ListRequestsResponse listed;
  while (true) {
    grpc::ClientContext context;
    options.Prepare(&context);
    dsar::v1::ListRequestsResponse page;
    grpc::Status status = stub->ListRequests(&context, request, &page);
    if (!status.ok()) return ExitFor(status);
    listed.mutable_requests()->MergeFrom(page.requests());
    listed.set_next_page_token(page.next_page_token());
    if (!all || page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  if (options.output != "table") {
    PrintMessage(options, listed);
    return kExitOk;
  }
  Table table(
      {"ID", "TYPE", "STATUS", "CREATED (UTC)", "DUE", "STATE", "STEPS"});
  for (const Request& item : listed.requests()) {
    int done = 0;
    int alerts = 0;
    for (const StoreStep& step : item.steps()) {
      done += StepSucceeded(step);
      alerts += !step.alert().empty();
    }
    table.AddRow(
        {item.id(),
         dsar::v1::RequestType_Name(item.type()),
         {StatusName(item), StatusColor(StatusName(item))},
         FormatTimestamp(item.created_at()),
         DeadlineText(options, item, /*long_form=*/false),
         item.current_state().empty() ? "-" : item.current_state(),
         absl::StrCat(
             done, "/", item.steps_size(),
             alerts == 0 ? "" : absl::StrCat(" (", alerts, " unserved)"))});
  }
  if (table.empty()) {
    std::fprintf(stderr, "no requests match\n");
  } else {
    table.Print(options);
  }
  if (!listed.next_page_token().empty()) {
    std::fprintf(stderr,
                 "(more requests: add --page-token=%s for the next page, or "
                 "--all)\n",
                 listed.next_page_token().c_str());
  }
  return kExitOk;
}

int RunWatch(const Options& options) {
  if (options.positional.size() != 1)
    return Usage("watch: takes one request id");
  int interval_ms = 200;
  if (options.Has("interval-ms") &&
      (!absl::SimpleAtoi(options.Flag("interval-ms"), &interval_ms) ||
       interval_ms < 10)) {
    return Usage("watch: --interval-ms takes a number of at least 10");
  }
  const std::string& id = options.positional[0];
  const bool scripts = options.output != "table";
  // A progress bar only for a person at a terminal.
  const bool bar = !scripts && options.stdout_is_tty;
  auto stub = NewStub(options);
  uint64_t printed_sequence = 0;
  std::string last_line;
  bool bar_shown = false;
  while (true) {
    Request request;
    grpc::Status status = GetRequest(*stub, options, id, &request);
    if (!status.ok()) {
      if (bar_shown) std::printf("\n");
      return ExitFor(status);
    }
    int done = 0;
    for (const StoreStep& step : request.steps()) done += StepSucceeded(step);
    const bool terminal = Stopped(request);

    std::vector<Event> events;
    if (scripts || bar) {
      status = ListEvents(*stub, options, id, &events);
      if (!status.ok()) {
        if (bar_shown) std::printf("\n");
        return ExitFor(status);
      }
    }
    if (scripts) {
      for (const Event& event : events) {
        if (event.sequence() <= printed_sequence) continue;
        printed_sequence = event.sequence();
        if (options.output == "yaml") {
          std::printf("---\n");
          PrintMessage(options, event);
        } else {
          std::printf("%s\n", MessageToJson(event, /*pretty=*/false).c_str());
        }
      }
    } else if (bar) {
      std::string line = absl::StrCat(
          ProgressBar(done, request.steps_size(), 24), " ", done, "/",
          request.steps_size(), " steps  ",
          Paint(options, StatusName(request), StatusColor(StatusName(request))),
          terminal ? "" : absl::StrCat("  ", request.current_state()));
      std::string above;
      for (const Event& event : events) {
        if (event.sequence() <= printed_sequence) continue;
        printed_sequence = event.sequence();
        absl::StrAppend(&above, "\r\033[K", EventLine(options, event), "\n");
      }
      std::printf("%s\r\033[K%s", above.c_str(), line.c_str());
      bar_shown = true;
    } else {
      std::string line = absl::StrFormat(
          "%s %-9s %-20s steps %d/%d", request.id(), StatusName(request),
          request.current_state(), done, request.steps_size());
      if (line != last_line) {
        std::printf("%s\n", line.c_str());
        last_line = line;
      }
    }
    std::fflush(stdout);
    if (terminal) {
      if (!scripts) {
        std::printf(bar ? "\n\n" : "\n");
        PrintRequestTable(options, request);
      }
      return request.status() == dsar::v1::COMPLETED ? kExitOk : kExitError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

int RunEvents(const Options& options) {
  if (options.positional.size() != 1) {
    return Usage("events: takes one request id");
  }
  const std::string& id = options.positional[0];
  std::string public_key;
  const std::string key_path = PublicKeyPath(options);
  if (!key_path.empty() && !ReadPublicKey(key_path, &public_key)) {
    return kExitUsage;
  }
  auto stub = NewStub(options);
  std::vector<Event> events;
  grpc::Status status = ListEvents(*stub, options, id, &events);
  if (!status.ok()) return ExitFor(status);

  // With a key, every event must be the one its audit entry proves.
  const bool verify = !public_key.empty();
  RequestAudit audit;
  std::map<uint64_t, const AuditedEvent*> by_index;
  if (verify) {
    if (int code = AuditRequest(options, id, public_key, &audit)) return code;
    for (const AuditedEvent& audited : audit.events) {
      by_index[audited.log_index] = &audited;
    }
    for (const Event& event : events) {
      auto it = by_index.find(event.log_index());
      // The note is kept beside the request, not in the leaf (which holds a
      // keyed commitment to it): everything else must match the entry.
      Event leaf_part = event;
      leaf_part.clear_note();
      if (it == by_index.end() ||
          !google::protobuf::util::MessageDifferencer::Equals(
              leaf_part, it->second->event)) {
        std::fprintf(stderr,
                     "dsarctl: audit verification FAILED: event #%llu of %s "
                     "%s its audit entry %llu\n",
                     static_cast<unsigned long long>(event.sequence()),
                     id.c_str(),
                     it == by_index.end() ? "has no" : "differs from",
                     static_cast<unsigned long long>(event.log_index()));
        return kExitError;
      }
    }
  }
  auto proof_of = [&](const Event& event) -> std::string {
    return by_index.at(event.log_index())->proven ? "proven" : "pending";
  };

  if (options.output != "table") {
    Json tree = Json::object();
    tree["events"] = Json::array();
    for (const Event& event : events) {
      Json item = MessageToTree(event);
      if (verify) item["proof"] = proof_of(event);
      tree["events"].push_back(item);
    }
    if (verify) {
      tree["checkpoint"] = {
          {"origin", audit.checkpoint.origin},
          {"size", audit.checkpoint.size},
          {"root_hash", absl::BytesToHexString(audit.checkpoint.root_hash)}};
    }
    PrintTree(options, tree);
    return kExitOk;
  }
  std::vector<std::string> headers = {"SEQ",   "TIME (UTC)", "KIND",
                                      "STATE", "STORE",      "DETAIL"};
  if (verify) headers.insert(headers.begin() + 1, "PROOF");
  Table table(headers);
  for (const Event& event : events) {
    std::vector<Table::Cell> row = {absl::StrCat(event.sequence()),
                                    FormatTimestamp(event.time()),
                                    {event.kind(), EventColor(event.kind())},
                                    event.state(),
                                    event.store(),
                                    EventDetail(event)};
    if (verify) {
      std::string proof = proof_of(event);
      row.insert(row.begin() + 1,
                 {proof, proof == "proven" ? Color::kGreen : Color::kYellow});
    }
    table.AddRow(std::move(row));
  }
  table.Print(options);
  if (verify) {
    std::printf(
        "\n%zu events checked against the signed checkpoint of size %llu "
        "(root %s)\n",
        events.size(), static_cast<unsigned long long>(audit.checkpoint.size),
        absl::BytesToHexString(audit.checkpoint.root_hash).c_str());
  }
  return kExitOk;
}

// The commands that act on one request share this shape: take the id, call
// the RPC with the request the command built, print the answer.
template <typename RpcRequest, typename Call>
int CallWithId(const Options& options, const std::string& command,
               RpcRequest request, Call call) {
  if (options.positional.size() != 1) {
    return Usage(absl::StrCat(command, ": takes one request id"));
  }
  request.set_id(options.positional[0]);
  auto stub = NewStub(options);
  grpc::ClientContext context;
  options.Prepare(&context);
  Request response;
  grpc::Status status = call(*stub, &context, request, &response);
  if (!status.ok()) return ExitFor(status);
  return PrintRequest(options, response);
}

int RunCancel(const Options& options) {
  dsar::v1::CancelRequestRequest request;
  request.set_reason(options.Flag("reason"));
  return CallWithId(
      options, "cancel", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.CancelRequest(context, r, response);
      });
}

int RunRetry(const Options& options) {
  dsar::v1::RetryRequestRequest request;
  for (const std::string& store : options.Flags("store")) {
    request.add_stores(store);
  }
  request.set_reason(options.Flag("reason"));
  return CallWithId(
      options, "retry", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.RetryRequest(context, r, response);
      });
}

int RunExtend(const Options& options) {
  if (options.positional.size() != 1) {
    return Usage("extend: takes one request id");
  }
  int by = 0;
  if (!absl::SimpleAtoi(options.Flag("by"), &by) || by <= 0) {
    return Usage(
        "extend: --by takes a positive number (months for GDPR, "
        "days for CCPA)");
  }
  if (options.Flag("reason").empty()) {
    return Usage("extend: --reason is required: the subject must be told why");
  }
  dsar::v1::ExtendDeadlineRequest request;
  request.set_extension(by);
  request.set_reason(options.Flag("reason"));
  return CallWithId(
      options, "extend", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.ExtendDeadline(context, r, response);
      });
}

int RunVerify(const Options& options) {
  if (options.Flag("code").empty()) return Usage("verify: --code is required");
  dsar::v1::VerifyIdentityRequest request;
  request.set_code(options.Flag("code"));
  return CallWithId(
      options, "verify", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.VerifyIdentity(context, r, response);
      });
}

int RunPause(const Options& options) {
  if (options.Flag("reason").empty())
    return Usage("pause: --reason is required");
  dsar::v1::PauseRequestRequest request;
  request.set_reason(options.Flag("reason"));
  return CallWithId(
      options, "pause", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.PauseRequest(context, r, response);
      });
}

int RunResume(const Options& options) {
  dsar::v1::ResumeRequestRequest request;
  request.set_reason(options.Flag("reason"));
  return CallWithId(
      options, "resume", request,
      [](auto& stub, auto* context, const auto& r, Request* response) {
        return stub.ResumeRequest(context, r, response);
      });
}

}  // namespace dsarctl
