#include "engine/deadlines.h"

#include <algorithm>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/regulation.h"

namespace dsar {
namespace {

constexpr int kGdprPeriodMonths = 1;
constexpr int kGdprMaxExtensionMonths = 2;
constexpr int kCcpaPeriodDays = 45;
constexpr int kCcpaMaxExtensionDays = 45;

absl::StatusOr<Regulation> KnownRegulation(std::string_view regulation) {
  if (std::optional<Regulation> known = ParseRegulation(regulation)) {
    return *known;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("regulation: must be GDPR or CCPA, got \"",
                   std::string(regulation), "\""));
}

std::string FormatLocal(absl::Time t, const absl::TimeZone& zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", t, zone);
}

// The civil day on which the original period ends.
absl::CivilDay OriginalDueDay(Regulation regulation, absl::Time received,
                              const absl::TimeZone& zone) {
  absl::CivilDay received_day = absl::ToCivilDay(received, zone);
  switch (regulation) {
    case Regulation::kGdpr:
      return AddCalendarMonths(received_day, kGdprPeriodMonths);
    case Regulation::kCcpa:
      return received_day + kCcpaPeriodDays;
  }
  return received_day;  // Unreachable: the switch covers every enumerator.
}

}  // namespace

absl::StatusOr<absl::TimeZone> LoadDeadlineTimeZone(const std::string& name) {
  absl::TimeZone zone;
  if (name.empty() || !absl::LoadTimeZone(name, &zone)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "time_zone: unknown time zone \"", name,
        "\" (want an IANA name such as Europe/Berlin; is tzdata installed?)"));
  }
  return zone;
}

absl::CivilDay AddCalendarMonths(absl::CivilDay day, int months) {
  absl::CivilMonth target = absl::CivilMonth(day) + months;
  absl::CivilDay last_of_target = absl::CivilDay(target + 1) - 1;
  int day_of_month = std::min(day.day(), last_of_target.day());
  return absl::CivilDay(target.year(), target.month(), day_of_month);
}

absl::Time EndOfCivilDay(absl::CivilDay day, const absl::TimeZone& zone) {
  absl::TimeZone::TimeInfo next = zone.At(absl::CivilSecond(day + 1));
  // SKIPPED: local midnight does not exist (clocks jump over it); the next
  // day starts at the transition. REPEATED: the first midnight counts.
  absl::Time next_day_starts =
      next.kind == absl::TimeZone::TimeInfo::SKIPPED ? next.trans : next.pre;
  return next_day_starts - absl::Milliseconds(1);
}

absl::StatusOr<absl::Time> StatutoryDeadline(std::string_view regulation,
                                             absl::Time received,
                                             const absl::TimeZone& zone) {
  ASSIGN_OR_RETURN(Regulation parsed, KnownRegulation(regulation));
  return EndOfCivilDay(OriginalDueDay(parsed, received, zone), zone);
}

absl::StatusOr<absl::Time> NotifyExtensionBy(std::string_view regulation,
                                             absl::Time received,
                                             const absl::TimeZone& zone) {
  return StatutoryDeadline(regulation, received, zone);
}

absl::StatusOr<absl::Time> ExtendedDeadline(std::string_view regulation,
                                            absl::Time received,
                                            absl::Time current_deadline,
                                            int extension, absl::Time now,
                                            const absl::TimeZone& zone) {
  ASSIGN_OR_RETURN(Regulation parsed, KnownRegulation(regulation));
  if (parsed == Regulation::kGdpr &&
      (extension < 1 || extension > kGdprMaxExtensionMonths)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "extension_months: a GDPR deadline can be extended by 1 or ",
        kGdprMaxExtensionMonths, " further months (Art. 12(3)), got ",
        extension));
  }
  if (parsed == Regulation::kCcpa &&
      (extension < 1 || extension > kCcpaMaxExtensionDays)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "extension_days: a CCPA deadline can be extended by 1 to ",
        kCcpaMaxExtensionDays,
        " further days (Cal. Code Regs. tit. 11 s. 7021(b)), got ", extension));
  }

  const absl::CivilDay due_day = OriginalDueDay(parsed, received, zone);
  const absl::Time original = EndOfCivilDay(due_day, zone);
  if (current_deadline > original) {
    return absl::FailedPreconditionError(
        absl::StrCat("current_deadline: already extended to ",
                     FormatLocal(current_deadline, zone), " (original ",
                     FormatLocal(original, zone),
                     "); a deadline can be extended only once"));
  }
  if (current_deadline < original) {
    return absl::InvalidArgumentError(absl::StrCat(
        "current_deadline: ", FormatLocal(current_deadline, zone),
        " is before the statutory deadline ", FormatLocal(original, zone),
        " for a request received ", FormatLocal(received, zone)));
  }
  if (now > original) {
    return absl::FailedPreconditionError(absl::StrCat(
        "now: the first period ended at ", FormatLocal(original, zone),
        "; an extension must be decided and notified within it"));
  }

  absl::CivilDay extended_day = parsed == Regulation::kGdpr
                                    ? AddCalendarMonths(due_day, extension)
                                    : due_day + extension;
  return EndOfCivilDay(extended_day, zone);
}

}  // namespace dsar
