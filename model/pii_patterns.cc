#include "model/pii_patterns.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "model/pii_detector.h"

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
  if (v.empty() || v.size() > 256) return {};
  return PiiDetector::Default().KindsInText(
      std::string_view(v.data(), v.size()));
}

}  // namespace dsar
