#include "audit_scan/opt_out_sql.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit_scan/record_audit.h"

namespace dsar {
namespace {

// The whitespace absl::StripAsciiWhitespace strips, for btrim.
constexpr char kBlank[] = "E' \\t\\n\\r\\f\\v'";

// `$n` for a new parameter holding `value`.
std::string Param(std::vector<std::string>* params, std::string value) {
  params->push_back(std::move(value));
  return absl::StrCat("$", params->size());
}

std::string Trimmed(const std::string& text_sql) {
  return absl::StrCat("btrim(", text_sql, ", ", kBlank, ")");
}

}  // namespace

std::optional<std::string> OptOutViolationSql(
    const CollectionSpec& collection, const PostgresRowScan::Quote& quote,
    std::vector<std::string>* params) {
  if (!collection.privacy_status.has_value()) return std::nullopt;
  const PrivacyStatusSpec& spec = *collection.privacy_status;
  std::vector<std::string> fields = OptOutCheckedFields(collection);
  if (fields.empty()) return std::nullopt;

  std::vector<std::string> statuses;
  for (const std::string& value : spec.opted_out) {
    statuses.push_back(Param(params, value));
  }
  std::string sql =
      absl::StrCat("lower(", Trimmed(absl::StrCat(quote(spec.field), "::text")),
                   ") IN (", absl::StrJoin(statuses, ", "), ")");
  auto restriction = collection.processing_flags.find("restriction");
  if (restriction != collection.processing_flags.end()) {
    absl::StrAppend(&sql, " AND lower(coalesce(",
                    Trimmed(absl::StrCat(quote(restriction->second), "::text")),
                    ", '')) NOT IN ('1', 'true', 't')");
  }
  std::vector<std::string> unscrubbed;
  for (const std::string& field : fields) {
    const std::string text = absl::StrCat(quote(field), "::text");
    ScrubbedForms forms = ScrubbedFormsOf(collection, field);
    std::string term =
        absl::StrCat("(", text, " IS NOT NULL AND ", Trimmed(text), " <> ''");
    if (!forms.values.empty()) {
      std::vector<std::string> placeholders;
      for (const std::string& value : forms.values) {
        placeholders.push_back(Param(params, value));
      }
      absl::StrAppend(&term, " AND ", text, " NOT IN (",
                      absl::StrJoin(placeholders, ", "), ")");
    }
    if (forms.hex64) {
      absl::StrAppend(&term, " AND ", Trimmed(text), " !~ '^[0-9a-f]{64}$'");
    }
    if (forms.hex32) {
      absl::StrAppend(&term, " AND ", Trimmed(text), " !~ '^[0-9a-f]{32}$'");
    }
    absl::StrAppend(&term, ")");
    unscrubbed.push_back(std::move(term));
  }
  absl::StrAppend(&sql, " AND (", absl::StrJoin(unscrubbed, " OR "), ")");
  return sql;
}

}  // namespace dsar
