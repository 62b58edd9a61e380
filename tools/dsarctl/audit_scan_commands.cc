// `dsarctl audit-scan run|report`: audit scans of the stores for privacy
// signals (docs/audit-scan-runs.md).

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {

int RunAuditScanRun(const Options& options) {
  // positional[0] is the subcommand word, "run".
  if (options.positional.size() != 1) {
    return Usage("audit-scan run: takes no arguments");
  }
  auto stub = dsar::v1::AdminService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::Request run;
  grpc::Status status =
      stub->RunAuditScan(&context, dsar::v1::RunAuditScanRequest(), &run);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, run);
    return kExitOk;
  }
  std::printf("%s\n", run.id().c_str());
  std::fprintf(stderr,
               "audit scan started over %d stores; `dsarctl watch %s`, then "
               "`dsarctl audit-scan report %s`\n",
               run.stores_size(), run.id().c_str(), run.id().c_str());
  return kExitOk;
}

int RunAuditScanReport(const Options& options) {
  // positional[0] is "report"; an optional run id follows.
  if (options.positional.size() > 2) {
    return Usage("audit-scan report: takes at most one run id");
  }
  const std::string diff = options.Flag("diff");
  if (!diff.empty() && diff != "previous") {
    return Usage("audit-scan report: --diff takes \"previous\"");
  }
  auto stub = dsar::v1::AdminService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::GetAuditReportRequest request;
  if (options.positional.size() == 2) request.set_id(options.positional[1]);
  request.set_diff_previous(!diff.empty());
  dsar::v1::GetAuditReportResponse response;
  grpc::Status status = stub->GetAuditReport(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  nlohmann::json report =
      nlohmann::json::parse(response.report_json(), nullptr, false);
  if (report.is_discarded()) {
    std::fprintf(stderr, "dsarctl: dsard's report is not JSON\n");
    return kExitError;
  }
  std::printf("run %s  %s  %s records scanned  digest %s\n",
              response.run_id().c_str(),
              report.value("compliance_status", "").c_str(),
              report["total_records_scanned"].dump().c_str(),
              response.digest().c_str());
  auto print = [&](const nlohmann::json& findings, const std::string& mark) {
    Table table({"", "SIGNAL", "SEVERITY", "STORE", "COLLECTION", "FIELD",
                 "RECORD", "SUBJECT"});
    for (const nlohmann::json& found : findings) {
      std::string field = found.value("field", "");
      if (found.contains("json_path")) {
        field += "." + found.value("json_path", "");
      }
      table.AddRow({mark, found.value("signal", ""),
                    found.value("severity", ""), found.value("store", ""),
                    found.value("collection", ""), field,
                    found.value("record_key", ""),
                    found.value("subject_reference", "")});
    }
    table.Print(options);
  };
  if (diff.empty()) {
    print(report["privacy_signals_detected"], "");
    return kExitOk;
  }
  if (response.previous_run_id().empty()) {
    std::fprintf(stderr, "no earlier completed run to compare with\n");
    print(report["privacy_signals_detected"], "");
    return kExitOk;
  }
  nlohmann::json changes =
      nlohmann::json::parse(response.diff_json(), nullptr, false);
  std::printf("compared with run %s: %zu new, %zu resolved\n",
              response.previous_run_id().c_str(),
              changes.is_object() ? changes["new"].size() : size_t{0},
              changes.is_object() ? changes["resolved"].size() : size_t{0});
  if (changes.is_object()) {
    print(changes["new"], "+");
    print(changes["resolved"], "-");
  }
  return kExitOk;
}

}  // namespace dsarctl
