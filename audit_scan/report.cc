#include "audit_scan/report.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace dsar {
namespace {

constexpr char kTimeFormat[] = "%Y-%m-%d%ET%H:%M:%SZ";

absl::Status Malformed(const std::string& member, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("audit report: ", member, ": ", what));
}

}  // namespace

AuditReport BuildAuditReport(
    absl::Time at, const std::vector<StoreScanResult>& results,
    const std::vector<std::pair<std::string, absl::Status>>& failures) {
  AuditReport report;
  report.audit_timestamp = at;
  bool violation = false;
  for (const StoreScanResult& result : results) {
    for (const CollectionCount& count : result.collections) {
      report.records_scanned.push_back(
          {result.store, count.collection, count.records_scanned});
      report.total_records_scanned += count.records_scanned;
    }
    for (const Finding& finding : result.findings) {
      violation = violation || finding.severity >= Severity::kMedium;
      report.findings.push_back(finding);
    }
    report.findings_not_listed += result.findings_not_listed;
  }
  for (const auto& [store, status] : failures) {
    report.stores_not_scanned.push_back({store, status.ToString()});
  }
  report.compliance_status = violation ? "NON_COMPLIANT"
                             : report.stores_not_scanned.empty() ? "COMPLIANT"
                                                                 : "INCOMPLETE";
  // Findings beyond the cap were all of some signal: unlisted, they still
  // count against compliance.
  if (report.findings_not_listed > 0)
    report.compliance_status = "NON_COMPLIANT";
  return report;
}

nlohmann::ordered_json AuditReportToJson(const AuditReport& report) {
  nlohmann::ordered_json json;
  json["audit_timestamp"] = absl::FormatTime(
      kTimeFormat, report.audit_timestamp, absl::UTCTimeZone());
  json["total_records_scanned"] = report.total_records_scanned;
  nlohmann::ordered_json signals = nlohmann::ordered_json::array();
  for (const Finding& finding : report.findings) {
    nlohmann::ordered_json entry;
    if (!finding.subject_reference.empty()) {
      entry["subject_reference"] = finding.subject_reference;
    }
    entry["signal"] = SignalName(finding.signal);
    entry["severity"] = SeverityName(finding.severity);
    entry["store"] = finding.store;
    entry["collection"] = finding.collection;
    entry["field"] = finding.field;
    if (!finding.json_path.empty()) entry["json_path"] = finding.json_path;
    if (!finding.record_key.empty()) entry["record_key"] = finding.record_key;
    if (!finding.patterns.empty()) entry["patterns"] = finding.patterns;
    if (finding.signal == Signal::kUndeclaredPiiField) {
      entry["matching_records"] = finding.matching_records;
      entry["records_scanned"] = finding.records_scanned;
    }
    signals.push_back(std::move(entry));
  }
  json["privacy_signals_detected"] = std::move(signals);
  json["compliance_status"] = report.compliance_status;
  nlohmann::ordered_json counts = nlohmann::ordered_json::array();
  for (const StoreCollectionCount& count : report.records_scanned) {
    counts.push_back({{"store", count.store},
                      {"collection", count.collection},
                      {"records", count.records}});
  }
  json["records_scanned"] = std::move(counts);
  nlohmann::ordered_json failed = nlohmann::ordered_json::array();
  for (const StoreFailure& failure : report.stores_not_scanned) {
    failed.push_back({{"store", failure.store}, {"error", failure.error}});
  }
  json["stores_not_scanned"] = std::move(failed);
  json["findings_not_listed"] = report.findings_not_listed;
  return json;
}

absl::StatusOr<AuditReport> AuditReportFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Malformed("report", "not a JSON object");
  AuditReport report;
  auto text = [&](const nlohmann::json& object, const char* member,
                  const std::string& where, std::string* out) -> absl::Status {
    auto it = object.find(member);
    if (it == object.end()) return absl::OkStatus();
    if (!it->is_string()) return Malformed(where + member, "not a string");
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  auto number = [&](const nlohmann::json& object, const char* member,
                    const std::string& where, int64_t* out) -> absl::Status {
    auto it = object.find(member);
    if (it == object.end()) return absl::OkStatus();
    if (!it->is_number_integer()) {
      return Malformed(where + member, "not an integer");
    }
    *out = it->get<int64_t>();
    return absl::OkStatus();
  };
  std::string timestamp;
  absl::Status status = text(json, "audit_timestamp", "", &timestamp);
  if (!status.ok()) return status;
  std::string error;
  if (!absl::ParseTime(kTimeFormat, timestamp, &report.audit_timestamp,
                       &error)) {
    return Malformed("audit_timestamp", "not an RFC 3339 UTC time");
  }
  status =
      number(json, "total_records_scanned", "", &report.total_records_scanned);
  if (!status.ok()) return status;
  status = text(json, "compliance_status", "", &report.compliance_status);
  if (!status.ok()) return status;
  status = number(json, "findings_not_listed", "", &report.findings_not_listed);
  if (!status.ok()) return status;
  auto signals = json.find("privacy_signals_detected");
  if (signals == json.end() || !signals->is_array()) {
    return Malformed("privacy_signals_detected", "missing or not a list");
  }
  for (size_t i = 0; i < signals->size(); ++i) {
    const nlohmann::json& entry = (*signals)[i];
    std::string where = absl::StrCat("privacy_signals_detected[", i, "].");
    if (!entry.is_object()) return Malformed(where, "not an object");
    Finding finding;
    std::string signal, severity;
    for (const auto& [member, out] :
         std::vector<std::pair<const char*, std::string*>>{
             {"signal", &signal},
             {"severity", &severity},
             {"store", &finding.store},
             {"collection", &finding.collection},
             {"field", &finding.field},
             {"json_path", &finding.json_path},
             {"record_key", &finding.record_key},
             {"subject_reference", &finding.subject_reference}}) {
      status = text(entry, member, where, out);
      if (!status.ok()) return status;
    }
    if (!ParseSignal(signal, &finding.signal)) {
      return Malformed(where + "signal", "unknown signal");
    }
    if (!ParseSeverity(severity, &finding.severity)) {
      return Malformed(where + "severity", "unknown severity");
    }
    auto patterns = entry.find("patterns");
    if (patterns != entry.end()) {
      if (!patterns->is_array())
        return Malformed(where + "patterns", "not a list");
      for (const nlohmann::json& pattern : *patterns) {
        if (!pattern.is_string()) {
          return Malformed(where + "patterns", "not a list of strings");
        }
        finding.patterns.push_back(pattern.get<std::string>());
      }
    }
    status =
        number(entry, "matching_records", where, &finding.matching_records);
    if (!status.ok()) return status;
    status = number(entry, "records_scanned", where, &finding.records_scanned);
    if (!status.ok()) return status;
    report.findings.push_back(std::move(finding));
  }
  auto counts = json.find("records_scanned");
  if (counts != json.end() && counts->is_array()) {
    for (const nlohmann::json& count : *counts) {
      if (!count.is_object()) continue;
      StoreCollectionCount entry;
      entry.store = count.value("store", "");
      entry.collection = count.value("collection", "");
      entry.records = count.value("records", int64_t{0});
      report.records_scanned.push_back(std::move(entry));
    }
  }
  auto failed = json.find("stores_not_scanned");
  if (failed != json.end() && failed->is_array()) {
    for (const nlohmann::json& failure : *failed) {
      if (!failure.is_object()) continue;
      report.stores_not_scanned.push_back(
          {failure.value("store", ""), failure.value("error", "")});
    }
  }
  return report;
}

AuditReportDiff DiffAuditReports(const AuditReport& previous,
                                 const AuditReport& current) {
  std::set<std::string> before, after;
  for (const Finding& finding : previous.findings) {
    before.insert(FindingIdentity(finding));
  }
  for (const Finding& finding : current.findings) {
    after.insert(FindingIdentity(finding));
  }
  AuditReportDiff diff;
  for (const Finding& finding : current.findings) {
    if (before.count(FindingIdentity(finding)) == 0) {
      diff.new_findings.push_back(finding);
    }
  }
  for (const Finding& finding : previous.findings) {
    if (after.count(FindingIdentity(finding)) == 0) {
      diff.resolved_findings.push_back(finding);
    }
  }
  return diff;
}

}  // namespace dsar
