#ifndef DSAR_ENGINE_DEADLINES_H_
#define DSAR_ENGINE_DEADLINES_H_

// Statutory response deadlines for Data Subject Requests.
//
// GDPR Art. 12(3): "without undue delay and in any event within one month of
// receipt", extendable "by two further months where necessary", the subject
// being told "within one month of receipt". Months are counted as Council
// Regulation 1182/71 Art. 3(2)(c) and the EDPB (Guidelines 01/2022) read it:
// the period ends on the same day number in the next month, or on the last
// day of that month when the day does not exist (31 Jan -> 28/29 Feb,
// 15 Mar -> 15 Apr, 31 Mar -> 30 Apr).
//
// CCPA (Cal. Civ. Code 1798.130(a)(2), Cal. Code Regs. tit. 11 s. 7021(b)):
// 45 calendar days from receipt, extendable once by up to 45 further days
// with notice to the consumer within the first 45 days.
//
// Every deadline is the END of its civil day in the controller's configured
// time zone (23:59:59.999 local), and "receipt" is the civil day on which the
// request arrived in that zone (23:30 UTC on 31 Jan is 1 Feb in Berlin).
// Deliberately not modelled: moving a deadline that falls on a weekend or
// public holiday to the next working day (Reg. 1182/71 Art. 3(4)). Ignoring
// it can only make a deadline earlier, never later, than the law allows.
//
// Regulation names are exactly "GDPR" and "CCPA", as in the public API
// (model/regulation.h).
// All functions are pure and thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "model/regulation.h"

namespace dsar {

// The zone deadlines are computed in, by IANA name ("Europe/Berlin", "UTC").
// INVALID_ARGUMENT naming `time_zone` when the name is unknown to the tz
// database (tzdata) rather than silently falling back to UTC as
// absl::LoadTimeZone's caller might.
absl::StatusOr<absl::TimeZone> LoadDeadlineTimeZone(const std::string& name);

// The original statutory deadline of a request received at `received`:
// end of the day one calendar month (GDPR) or 45 days (CCPA) after the day
// of receipt in `zone`. INVALID_ARGUMENT naming `regulation` when it is
// neither "GDPR" nor "CCPA".
absl::StatusOr<absl::Time> StatutoryDeadline(std::string_view regulation,
                                             absl::Time received,
                                             const absl::TimeZone& zone);

// The latest time by which the subject must be told of an extension and its
// reasons: the original deadline (GDPR Art. 12(3), CCPA s. 7021(b)). Same
// errors as StatutoryDeadline.
absl::StatusOr<absl::Time> NotifyExtensionBy(std::string_view regulation,
                                             absl::Time received,
                                             const absl::TimeZone& zone);

// The deadline after extending the original one by `extension` units:
// calendar months for GDPR (1 or 2), days for CCPA (1 to 45). The extension
// runs from the ORIGINAL deadline's day with the same month arithmetic
// (received 31 Jan 2023: due 28 Feb, +2 months -> end of 28 Apr), so the
// total never exceeds three months (GDPR) or 90 days (CCPA) from receipt.
//
// A deadline can be extended once, and only while the first period runs:
//   INVALID_ARGUMENT naming `regulation` for an unknown regulation;
//   INVALID_ARGUMENT naming `extension_months` / `extension_days` when the
//     amount is zero, negative or longer than the regulation allows;
//   FAILED_PRECONDITION naming `current_deadline` when it is later than the
//     original deadline (the request was already extended);
//   INVALID_ARGUMENT naming `current_deadline` when it is earlier than the
//     original deadline (it was not computed from `received`);
//   FAILED_PRECONDITION naming `now` when `now` is after the original
//     deadline (too late to extend: the subject had to be told in time).
absl::StatusOr<absl::Time> ExtendedDeadline(std::string_view regulation,
                                            absl::Time received,
                                            absl::Time current_deadline,
                                            int extension, absl::Time now,
                                            const absl::TimeZone& zone);

// `day` plus `months` calendar months, clamped to the last day of the target
// month (31 Jan + 1 -> 28 or 29 Feb). `months` may be negative.
absl::CivilDay AddCalendarMonths(absl::CivilDay day, int months);

// The last representable instant of `day` in `zone`: one millisecond before
// the next day starts (which, across a DST change at midnight, is the first
// instant that exists on the next day).
absl::Time EndOfCivilDay(absl::CivilDay day, const absl::TimeZone& zone);

}  // namespace dsar

#endif  // DSAR_ENGINE_DEADLINES_H_
