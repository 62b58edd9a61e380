#include "audit_scan/finding.h"

#include "absl/strings/str_cat.h"

namespace dsar {
namespace {

constexpr Signal kSignals[] = {
    Signal::kOptOutViolation, Signal::kDataRenameDetection,
    Signal::kErasureResidue, Signal::kUndeclaredPiiField};
constexpr Severity kSeverities[] = {Severity::kLow, Severity::kMedium,
                                    Severity::kHigh, Severity::kCritical};

}  // namespace

const char* SignalName(Signal signal) {
  switch (signal) {
    case Signal::kOptOutViolation:
      return "OPT_OUT_VIOLATION";
    case Signal::kDataRenameDetection:
      return "DATA_RENAME_DETECTION";
    case Signal::kErasureResidue:
      return "ERASURE_RESIDUE";
    case Signal::kUndeclaredPiiField:
      return "UNDECLARED_PII_FIELD";
  }
  return "UNKNOWN";
}

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kLow:
      return "LOW";
    case Severity::kMedium:
      return "MEDIUM";
    case Severity::kHigh:
      return "HIGH";
    case Severity::kCritical:
      return "CRITICAL";
  }
  return "UNKNOWN";
}

Severity SeverityOf(Signal signal) {
  switch (signal) {
    case Signal::kOptOutViolation:
    case Signal::kErasureResidue:
      return Severity::kCritical;
    case Signal::kDataRenameDetection:
      return Severity::kMedium;
    case Signal::kUndeclaredPiiField:
      return Severity::kLow;
  }
  return Severity::kCritical;
}

bool ParseSignal(std::string_view name, Signal* signal) {
  for (Signal candidate : kSignals) {
    if (name == SignalName(candidate)) {
      *signal = candidate;
      return true;
    }
  }
  return false;
}

bool ParseSeverity(std::string_view name, Severity* severity) {
  for (Severity candidate : kSeverities) {
    if (name == SeverityName(candidate)) {
      *severity = candidate;
      return true;
    }
  }
  return false;
}

std::string FindingIdentity(const Finding& finding) {
  // Each part length-prefixed: no two different findings share an
  // identity, whatever their names hold.
  std::string id = SignalName(finding.signal);
  for (const std::string* part :
       {&finding.store, &finding.collection, &finding.field, &finding.json_path,
        &finding.record_key}) {
    absl::StrAppend(&id, "\x1f", part->size(), ":", *part);
  }
  return id;
}

}  // namespace dsar
