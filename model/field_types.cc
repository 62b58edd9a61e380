#include "model/field_types.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "model/identity.h"

namespace dsar {
namespace {

struct NamedType {
  std::string_view name;
  FieldType type;
};
constexpr NamedType kTypes[] = {
    {"text", FieldType::kText},           {"email", FieldType::kEmail},
    {"phone", FieldType::kPhone},         {"user_id", FieldType::kUserId},
    {"integer", FieldType::kInteger},     {"date", FieldType::kDate},
    {"timestamp", FieldType::kTimestamp},
};

bool IsEmailAddress(absl::string_view email) {
  // Pragmatic RFC 5321 shape: local@domain with a dot in the domain, no
  // spaces or control characters, sensible lengths.
  if (email.size() > 254) return false;
  size_t at = email.rfind('@');
  if (at == absl::string_view::npos || at == 0 || at > 64) return false;
  absl::string_view local = email.substr(0, at);
  absl::string_view domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == absl::string_view::npos ||
      domain.front() == '.' || domain.back() == '.' ||
      absl::StrContains(domain, "..") ||
      local.find('@') != absl::string_view::npos) {
    return false;
  }
  for (char c : email) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',' ||
        c == ';' || c == '"' || c == '\\' || c == '(' || c == ')') {
      return false;
    }
  }
  for (char c : domain) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

bool IsCanonicalInteger(absl::string_view text) {
  int64_t value = 0;
  return absl::SimpleAtoi(text, &value) && absl::StrCat(value) == text;
}

// `format` and the parsed time print back to `text`: no lenient forms.
bool ParsesExactly(absl::string_view format, absl::string_view text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(format, text, absl::UTCTimeZone(), &time, &error)) {
    return false;
  }
  return absl::FormatTime(format, time, absl::UTCTimeZone()) == text;
}

bool IsDate(absl::string_view text) {
  return text.size() == 10 && ParsesExactly("%Y-%m-%d", text);
}

bool IsTimestamp(absl::string_view text) {
  if (text.size() < 20 || text.back() != 'Z') return false;
  absl::string_view seconds = text.substr(0, 19);
  absl::string_view rest = text.substr(19, text.size() - 20);
  if (!ParsesExactly("%Y-%m-%dT%H:%M:%S", seconds)) return false;
  if (rest.empty()) return true;
  if (rest.size() < 2 || rest.size() > 10 || rest[0] != '.') return false;
  for (char c : rest.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status Invalid(absl::string_view reason) {
  return absl::InvalidArgumentError(reason);
}

}  // namespace

std::optional<FieldType> ParseFieldType(std::string_view name) {
  for (const NamedType& entry : kTypes) {
    if (entry.name == name) return entry.type;
  }
  return std::nullopt;
}

std::string_view FieldTypeName(FieldType type) {
  for (const NamedType& entry : kTypes) {
    if (entry.type == type) return entry.name;
  }
  return "text";
}

std::string KnownFieldTypeNames() {
  return "text, email, phone, user_id, integer, date, timestamp";
}

absl::Status ValidateFieldValue(FieldType type, std::string_view value,
                                std::string_view default_phone_region) {
  absl::string_view text(value.data(), value.size());
  switch (type) {
    case FieldType::kText:
      return absl::OkStatus();
    case FieldType::kEmail:
      if (!IsEmailAddress(absl::StripAsciiWhitespace(text))) {
        return Invalid("not an email address");
      }
      return absl::OkStatus();
    case FieldType::kPhone:
      return NormalizeIdentityValue(kPhoneKey, value, default_phone_region)
          .status();
    case FieldType::kUserId:
      if (text.empty() || absl::StripAsciiWhitespace(text) != text) {
        return Invalid("not a user id (empty, or surrounded by whitespace)");
      }
      return absl::OkStatus();
    case FieldType::kInteger:
      if (!IsCanonicalInteger(text)) {
        return Invalid("not an integer (decimal digits, optional -)");
      }
      return absl::OkStatus();
    case FieldType::kDate:
      if (!IsDate(text)) return Invalid("not a date (YYYY-MM-DD)");
      return absl::OkStatus();
    case FieldType::kTimestamp:
      if (!IsTimestamp(text)) {
        return Invalid("not a timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)");
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace dsar
