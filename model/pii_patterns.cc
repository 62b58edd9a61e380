#include "model/pii_patterns.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace dsar {
namespace {

absl::string_view View(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

void Add(std::vector<PiiKind>* kinds, PiiKind kind) {
  if (std::find(kinds->begin(), kinds->end(), kind) == kinds->end()) {
    kinds->push_back(kind);
  }
}

bool LooksLikeEmail(absl::string_view v) {
  size_t at = v.find('@');
  if (at == absl::string_view::npos || at == 0 || v.rfind('@') != at) {
    return false;
  }
  absl::string_view domain = v.substr(at + 1);
  size_t dot = domain.rfind('.');
  if (dot == absl::string_view::npos || dot == 0 || dot + 2 > domain.size()) {
    return false;
  }
  return std::none_of(v.begin(), v.end(), [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c));
  });
}

bool LooksLikePhone(absl::string_view v) {
  // International: '+' then 7 to 15 digits with the usual separators.
  // National: 10 or 11 digits written like a phone number: a trunk '0'
  // (07700 900123), an area code in parentheses, or 3-3-4 groups
  // (555-010-4477). Dates, SSNs, IPs and bare numbers are not.
  int digits = 0;
  std::vector<int> groups(1, 0);
  bool paren = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      ++digits;
      ++groups.back();
    } else if (c == '+' && i == 0) {
    } else if (c == ' ' || c == '-' || c == '(' || c == ')') {
      paren = paren || c == '(';
      if (groups.back() != 0) groups.push_back(0);
    } else {
      return false;
    }
  }
  if (groups.back() == 0) groups.pop_back();
  if (!v.empty() && v[0] == '+') return digits >= 7 && digits <= 15;
  if (digits < 10 || digits > 11) return false;
  const bool trunk = v[0] == '0';
  const bool north_american =
      groups.size() == 3 && groups[0] == 3 && groups[1] == 3 && groups[2] == 4;
  return trunk || paren || north_american;
}

bool LooksLikeIp(absl::string_view v) {
  std::string text(v);
  unsigned char buffer[16];
  if (inet_pton(AF_INET, text.c_str(), buffer) == 1) return true;
  return text.find(':') != std::string::npos &&
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

bool LooksLikeSsn(absl::string_view v) {
  // 123-45-6789; area 000, 666 and 9xx are never issued.
  if (v.size() != 11 || v[3] != '-' || v[6] != '-') return false;
  for (size_t i : {0, 1, 2, 4, 5, 7, 8, 9, 10}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(v[i]))) return false;
  }
  absl::string_view area = v.substr(0, 3);
  return area != "000" && area != "666" && v[0] != '9';
}

bool LooksLikeNino(absl::string_view v) {
  // UK National Insurance number: two letters, six digits, A-D (spaces
  // allowed): "QQ 12 34 56 C".
  std::string compact;
  for (char c : v) {
    if (c != ' ') compact.push_back(absl::ascii_toupper(c));
  }
  if (compact.size() != 9) return false;
  for (int i : {0, 1}) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(compact[i])))
      return false;
  }
  for (int i = 2; i < 8; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(compact[i])))
      return false;
  }
  return compact[8] >= 'A' && compact[8] <= 'D';
}

}  // namespace

const char* PiiKindName(PiiKind kind) {
  switch (kind) {
    case PiiKind::kEmail:
      return "email";
    case PiiKind::kPhone:
      return "phone";
    case PiiKind::kIpAddress:
      return "ip_address";
    case PiiKind::kPaymentCard:
      return "payment_card";
    case PiiKind::kNationalId:
      return "national_id";
    case PiiKind::kName:
      return "name";
    case PiiKind::kPostalAddress:
      return "postal_address";
    case PiiKind::kBirthDate:
      return "birth_date";
  }
  return "unknown";
}

std::vector<PiiKind> PiiKindsOfColumnName(std::string_view column) {
  const std::string name = absl::AsciiStrToLower(View(column));
  auto has = [&name](absl::string_view part) {
    return absl::StrContains(name, part);
  };
  std::vector<PiiKind> kinds;
  if (has("email") || has("e_mail") || name == "mail") {
    Add(&kinds, PiiKind::kEmail);
  }
  if (has("phone") || has("mobile") || has("msisdn") || name == "tel") {
    Add(&kinds, PiiKind::kPhone);
  }
  if (name == "ip" || has("ip_addr") || has("ipaddr") ||
      absl::EndsWith(name, "_ip") || absl::StartsWith(name, "ip_")) {
    Add(&kinds, PiiKind::kIpAddress);
  }
  if (has("card_number") || has("cardnumber") || name == "pan" ||
      has("credit_card")) {
    Add(&kinds, PiiKind::kPaymentCard);
  }
  if (name == "ssn" || has("social_security") || has("national_id") ||
      has("nino") || has("passport") || has("tax_id")) {
    Add(&kinds, PiiKind::kNationalId);
  }
  if (has("first_name") || has("last_name") || has("full_name") ||
      has("surname") || name == "name" || has("given_name")) {
    Add(&kinds, PiiKind::kName);
  }
  if (has("street") || has("postcode") || has("postal") || has("zip") ||
      (has("address") && !has("ip") && !has("email") && !has("mac"))) {
    Add(&kinds, PiiKind::kPostalAddress);
  }
  if (has("birth") || name == "dob") Add(&kinds, PiiKind::kBirthDate);
  return kinds;
}

bool LooksLikePaymentCard(std::string_view value) {
  std::string digits;
  for (char c : value) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digits.push_back(c);
    } else if (c != ' ' && c != '-') {
      return false;
    }
  }
  if (digits.size() < 13 || digits.size() > 19) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

std::vector<PiiKind> PiiKindsOfValue(std::string_view value) {
  absl::string_view v = absl::StripAsciiWhitespace(View(value));
  std::vector<PiiKind> kinds;
  if (v.empty() || v.size() > 256) return kinds;
  if (LooksLikeEmail(v)) Add(&kinds, PiiKind::kEmail);
  if (LooksLikePaymentCard(std::string_view(v.data(), v.size()))) {
    Add(&kinds, PiiKind::kPaymentCard);
  } else if (LooksLikePhone(v)) {
    Add(&kinds, PiiKind::kPhone);
  }
  if (LooksLikeIp(v)) Add(&kinds, PiiKind::kIpAddress);
  if (LooksLikeSsn(v) || LooksLikeNino(v)) Add(&kinds, PiiKind::kNationalId);
  return kinds;
}

}  // namespace dsar
