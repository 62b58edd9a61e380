#include "model/identity.h"

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumberutil.h>

#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "model/bounded_memo.h"

namespace dsar {
namespace {

using ::i18n::phonenumbers::PhoneNumber;
using ::i18n::phonenumbers::PhoneNumberUtil;

// The library, silenced: its log lines may quote the number being parsed.
const PhoneNumberUtil& Phones() {
  static const PhoneNumberUtil* const util = [] {
    PhoneNumberUtil* instance = PhoneNumberUtil::GetInstance();
    instance->SetLogger(new ::i18n::phonenumbers::NullLogger());  // Owns it.
    return instance;
  }();
  return *util;
}

absl::Status InvalidPhone(absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a valid phone number: ", reason));
}

// Characters people write phone numbers with. libphonenumber accepts far
// more (letters as on a keypad, "ext", several '+'), none of which belongs
// in an identity.
absl::Status CheckPhoneCharacters(absl::string_view value) {
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == ' ' ||
        c == '-' || c == '.' || c == '(' || c == ')' || c == '/') {
      continue;
    }
    if (c == '+' && i == 0) continue;
    return InvalidPhone(
        "only digits, spaces, - . ( ) / and a leading + are allowed");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParsePhone(absl::string_view value,
                                       std::string_view default_phone_region) {
  if (absl::Status status = CheckPhoneCharacters(value); !status.ok()) {
    return status;
  }
  const PhoneNumberUtil& util = Phones();
  std::string region = default_phone_region.empty()
                           ? std::string("ZZ")  // Unknown: needs a '+'.
                           : std::string(default_phone_region);
  PhoneNumber number;
  switch (util.Parse(std::string(value), region, &number)) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
      break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
      return InvalidPhone(
          default_phone_region.empty()
              ? "no valid country code (start with + and the country code; "
                "the inventory sets no default_phone_region)"
              : "invalid country code");
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN:
      return InvalidPhone("too short");
    case PhoneNumberUtil::TOO_LONG_NSN:
      return InvalidPhone("too long");
    default:
      return InvalidPhone("not a number");
  }
  // "Possible" checks the length against the country's numbering plan; the
  // stricter "valid" also checks that the range is allocated, which goes
  // stale with the packaged metadata and refuses numbers people do use (and
  // the ranges Ofcom reserves for examples, 07700 900xxx).
  switch (util.IsPossibleNumberWithReason(number)) {
    case PhoneNumberUtil::IS_POSSIBLE:
      break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE:
      return InvalidPhone("invalid country code");
    case PhoneNumberUtil::TOO_SHORT:
      return InvalidPhone("too short");
    case PhoneNumberUtil::TOO_LONG:
      return InvalidPhone("too long");
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
      return InvalidPhone("a local number without its area code");
    default:
      return InvalidPhone("wrong length for its country");
  }
  std::string e164;
  util.Format(number, PhoneNumberUtil::E164, &e164);
  return e164;
}

// Phone numbers seen recently (model/bounded_memo.h): libphonenumber's
// parse (ICU regular expressions) was a tenth of a worker's CPU per task,
// for the same few numbers of the requests in flight, parsed again by every
// task and by dsar_phone() for every candidate row.
constexpr size_t kPhonesRemembered = 4096;

// ParsePhone, remembered.
absl::StatusOr<std::string> NormalizePhone(
    absl::string_view value, std::string_view default_phone_region) {
  static auto* const memo =
      new BoundedMemo<absl::StatusOr<std::string>>(kPhonesRemembered);
  return memo->Get(absl::StrCat(absl::string_view(default_phone_region.data(),
                                                  default_phone_region.size()),
                                "\n", value),
                   [&] { return ParsePhone(value, default_phone_region); });
}

// The forms PhoneLookupForms gives, computed from scratch.
std::vector<std::string> ComputePhoneLookupForms(std::string_view e164) {
  const PhoneNumberUtil& util = Phones();
  PhoneNumber number;
  if (e164.empty() || e164[0] != '+' ||
      util.Parse(std::string(e164), "ZZ", &number) !=
          PhoneNumberUtil::NO_PARSING_ERROR) {
    return {};
  }
  std::string canonical;
  util.Format(number, PhoneNumberUtil::E164, &canonical);
  if (canonical != e164) return {};
  std::vector<std::string> forms = {canonical};
  auto add = [&](std::string written) {
    std::string digits;
    for (char c : written) {
      if (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '+') {
        digits.push_back(c);
      }
    }
    for (const std::string& form : forms) {
      if (form == digits) return;
    }
    if (!digits.empty()) forms.push_back(std::move(digits));
  };
  std::string national;
  util.Format(number, PhoneNumberUtil::NATIONAL, &national);
  add(national);
  std::string significant;
  util.GetNationalSignificantNumber(number, &significant);
  add(significant);
  return forms;
}

}  // namespace

std::string IdentityKey(const v1::SubjectIdentity& identity) {
  switch (identity.type()) {
    case v1::EMAIL:
      return std::string(kEmailKey);
    case v1::USER_ID:
      return std::string(kUserIdKey);
    case v1::PHONE:
      return std::string(kPhoneKey);
    default:
      return identity.custom_type();
  }
}

v1::SubjectIdentity IdentityFromKey(const std::string& key,
                                    const std::string& value) {
  v1::SubjectIdentity identity;
  if (key == kEmailKey) {
    identity.set_type(v1::EMAIL);
  } else if (key == kUserIdKey) {
    identity.set_type(v1::USER_ID);
  } else if (key == kPhoneKey) {
    identity.set_type(v1::PHONE);
  } else {
    identity.set_type(v1::CUSTOM);
    identity.set_custom_type(key);
  }
  identity.set_value(value);
  return identity;
}

bool IsKnownPhoneRegion(std::string_view region) {
  if (region.size() != 2 || !absl::ascii_isupper(region[0]) ||
      !absl::ascii_isupper(region[1])) {
    return false;
  }
  std::set<std::string> regions;
  Phones().GetSupportedRegions(&regions);
  return regions.count(std::string(region)) > 0;
}

absl::StatusOr<std::string> NormalizeIdentityValue(
    std::string_view key, std::string_view value,
    std::string_view default_phone_region) {
  absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()));
  if (trimmed.empty()) return absl::InvalidArgumentError("empty");
  if (key == kEmailKey) return absl::AsciiStrToLower(trimmed);
  if (key == kPhoneKey) return NormalizePhone(trimmed, default_phone_region);
  return std::string(trimmed);
}

absl::StatusOr<v1::SubjectIdentity> NormalizeSubjectIdentity(
    const v1::SubjectIdentity& identity,
    std::string_view default_phone_region) {
  absl::StatusOr<std::string> value = NormalizeIdentityValue(
      IdentityKey(identity), identity.value(), default_phone_region);
  if (!value.ok()) return value.status();
  v1::SubjectIdentity out = identity;
  out.set_value(*std::move(value));
  return out;
}

std::vector<std::string> PhoneLookupForms(std::string_view e164) {
  static auto* const memo =
      new BoundedMemo<std::vector<std::string>>(kPhonesRemembered);
  return memo->Get(std::string(e164),
                   [e164] { return ComputePhoneLookupForms(e164); });
}

}  // namespace dsar
