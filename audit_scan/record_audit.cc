#include "audit_scan/record_audit.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "model/identity.h"
#include "model/pii_detector.h"

namespace dsar {
namespace {

// Distinct (field, JSON path) pairs counted per collection: JSON payloads
// with keys of their own per record (ids as keys) must not grow the map
// without bound. Pairs beyond it are still reported per record.
constexpr size_t kMaxTrackedFields = 10000;

bool IsLowerHex(absl::string_view text, size_t length) {
  return text.size() == length &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsScrubbed(const ScrubbedForms& forms,
                const std::optional<std::string_view>& value) {
  if (!value.has_value()) return true;
  absl::string_view text = absl::StripAsciiWhitespace(
      absl::string_view(value->data(), value->size()));
  if (text.empty()) return true;
  if (forms.values.count(std::string(*value)) > 0) return true;
  return (forms.hex64 && IsLowerHex(text, 64)) ||
         (forms.hex32 && IsLowerHex(text, 32));
}

// A processing flag set: 1 / true, as the connectors write it.
bool IsSet(const std::optional<std::string_view>& value) {
  if (!value.has_value()) return false;
  std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(
      absl::string_view(value->data(), value->size())));
  return text == "1" || text == "true" || text == "t";
}

}  // namespace

std::vector<std::string> OptOutCheckedFields(const CollectionSpec& collection) {
  std::set<std::string> fields;
  for (const auto& [field, category] : collection.pii_fields) {
    fields.insert(field);
  }
  for (const auto& [key, field] : collection.identity_fields) {
    if (key == kEmailKey || key == kPhoneKey) fields.insert(field);
  }
  if (collection.privacy_status.has_value()) {
    fields.erase(collection.privacy_status->field);
  }
  return std::vector<std::string>(fields.begin(), fields.end());
}

ScrubbedForms ScrubbedFormsOf(const CollectionSpec& collection,
                              const std::string& field) {
  ScrubbedForms forms;
  if (collection.privacy_status.has_value()) {
    forms.values = collection.privacy_status->scrubbed;
    forms.hex64 = forms.hex32 = collection.privacy_status->scrubbed_hashes;
  }
  auto mask = collection.masks.find(field);
  if (mask != collection.masks.end()) {
    switch (mask->second.strategy) {
      case MaskStrategy::kFixed:
        forms.values.insert(mask->second.text);
        break;
      case MaskStrategy::kHash:
        forms.hex64 = true;
        break;
      case MaskStrategy::kRandom:
        forms.hex32 = true;
        break;
      case MaskStrategy::kNull:
      case MaskStrategy::kKeep:
        break;
    }
  }
  return forms;
}

bool IsOptedOut(const CollectionSpec& collection, const ScannedRecord& record) {
  if (!collection.privacy_status.has_value()) return false;
  const PrivacyStatusSpec& spec = *collection.privacy_status;
  const ScannedField* status = record.Find(spec.field);
  if (status == nullptr || !status->value.has_value()) return false;
  absl::string_view value = absl::StripAsciiWhitespace(
      absl::string_view(status->value->data(), status->value->size()));
  // Few values each: a loop beats lowercasing a copy of every record's.
  if (std::none_of(spec.opted_out.begin(), spec.opted_out.end(),
                   [&](const std::string& opted_out) {
                     return absl::EqualsIgnoreCase(value, opted_out);
                   })) {
    return false;
  }
  auto restriction = collection.processing_flags.find("restriction");
  if (restriction != collection.processing_flags.end()) {
    const ScannedField* flag = record.Find(restriction->second);
    if (flag != nullptr && IsSet(flag->value)) return false;
  }
  return true;
}

std::vector<std::string> UnscrubbedFields(const CollectionSpec& collection,
                                          const ScannedRecord& record) {
  std::vector<std::string> unscrubbed;
  if (!IsOptedOut(collection, record)) return unscrubbed;
  for (const std::string& name : OptOutCheckedFields(collection)) {
    const ScannedField* field = record.Find(name);
    if (field == nullptr) continue;
    if (!IsScrubbed(ScrubbedFormsOf(collection, name), field->value)) {
      unscrubbed.push_back(name);
    }
  }
  return unscrubbed;
}

CollectionAudit::CollectionAudit(const StoreSpec& store,
                                 const CollectionSpec& collection,
                                 const ScanOptions& options,
                                 StoreScanResult* out)
    : store_(store), collection_(collection), options_(options), out_(out) {
  for (const auto& [field, category] : collection.pii_fields) {
    declared_.insert(field);
  }
  for (const auto& [key, field] : collection.identity_fields) {
    declared_.insert(field);
  }
  for (const auto& [flag, field] : collection.processing_flags) {
    declared_.insert(field);
  }
  if (collection.privacy_status.has_value()) {
    declared_.insert(collection.privacy_status->field);
  }
  if (!collection.record_key.empty()) declared_.insert(collection.record_key);
}

Finding CollectionAudit::At(Signal signal, const std::string& field,
                            const std::string& path,
                            const ScannedRecord& record) const {
  Finding finding;
  finding.signal = signal;
  finding.severity = SeverityOf(signal);
  finding.store = store_.name;
  finding.collection = collection_.name;
  finding.field = field;
  finding.json_path = path;
  finding.record_key = record.key;
  finding.subject_reference =
      options_.referencer->Reference(store_, collection_, record);
  return finding;
}

void CollectionAudit::Add(Finding finding) {
  if (listed_ >= options_.max_findings_per_collection) {
    ++out_->findings_not_listed;
    return;
  }
  ++listed_;
  out_->findings.push_back(std::move(finding));
}

void CollectionAudit::CheckOptOut(const ScannedRecord& record) {
  for (const std::string& field : UnscrubbedFields(collection_, record)) {
    Add(At(Signal::kOptOutViolation, field, "", record));
  }
}

void CollectionAudit::CheckPatterns(const ScannedRecord& record) {
  ++records_;
  const PiiDetector& detector = PiiDetector::Default();
  for (const ScannedField& field : record.fields) {
    if (!field.value.has_value() || field.value->empty()) continue;
    if (declared_.find(field.name) != declared_.end()) continue;
    std::vector<PiiMatch> matches =
        detector.FindInField(field.name, *field.value);
    if (matches.empty()) continue;
    std::string name(field.name);
    // One finding per JSON path, listing the kinds found there.
    std::map<std::string, std::set<std::string>> by_path;
    for (const PiiMatch& match : matches) {
      by_path[match.path].insert(PiiKindName(match.kind));
    }
    // A top-level name that itself holds a pattern (a JSON line keyed by an
    // email) is written "*", like such keys in paths.
    if (!detector.KindsInText(name).empty()) name = "*";
    for (auto& [path, kinds] : by_path) {
      auto key = std::make_pair(name, path);
      auto stats = stats_.find(key);
      if (stats == stats_.end() && stats_.size() < kMaxTrackedFields) {
        stats = stats_.emplace(key, FieldStats()).first;
      }
      if (stats != stats_.end()) {
        ++stats->second.records;
        stats->second.kinds.insert(kinds.begin(), kinds.end());
      }
      Finding finding = At(Signal::kDataRenameDetection, name, path, record);
      finding.patterns.assign(kinds.begin(), kinds.end());
      Add(std::move(finding));
    }
  }
}

void CollectionAudit::Finish() {
  for (const auto& [key, stats] : stats_) {
    if (records_ == 0 || stats.records < options_.undeclared_min_records ||
        static_cast<double>(stats.records) <=
            options_.undeclared_share * static_cast<double>(records_)) {
      continue;
    }
    Finding finding;
    finding.signal = Signal::kUndeclaredPiiField;
    finding.severity = SeverityOf(finding.signal);
    finding.store = store_.name;
    finding.collection = collection_.name;
    finding.field = key.first;
    finding.json_path = key.second;
    finding.patterns.assign(stats.kinds.begin(), stats.kinds.end());
    finding.matching_records = stats.records;
    finding.records_scanned = records_;
    // Not subject to the per-collection cap: at most one per field.
    out_->findings.push_back(std::move(finding));
  }
  out_->collections.push_back({collection_.name, records_});
}

}  // namespace dsar
