#ifndef DSAR_MODEL_PII_DETECTOR_H_
#define DSAR_MODEL_PII_DETECTOR_H_

// The one detector of personal data patterns in values: emails, phone
// numbers, IPv4/IPv6 addresses, payment cards and national ids (US SSN, UK
// NI number). Used by `dsarctl inventory check` (through PiiKindsOfValue,
// pii_patterns.h) and by the audit scans (audit_scan/, docs/audit-scan.md).
//
// All patterns are compiled once into one RE2::Set, which says in one pass
// over a value which patterns occur; only for those, the pattern's own RE2
// finds the spans, which are then confirmed where a regular expression is
// not enough (Luhn for cards, inet_pton for IPv6, digit counts for phones,
// issued areas for SSNs).
//
// Phone numbers: international (+ and 7 to 15 digits), national with 10 or
// 11 digits written like a phone number ("(555) 010-4477", "555-010-4477",
// "07700 900123"). A local 7-digit number ("555-0199") is too often
// something else (a part number, an extension, a range) to count on its
// own: it counts only when the field or JSON key holding it names a contact
// means (a name with "phone", "mobile", "contact", "msisdn", "whatsapp" in
// it, or the word "tel", "cell", "fax" or "sms"), as seed 002's
// {"backup_contact": "555-0199"} does.
//
// Payment cards: 13 to 19 digits (spaces or dashes between them allowed)
// that start with 2 to 6 (the card networks' major industry identifiers;
// this keeps epoch milliseconds and order numbers out) and pass the Luhn
// check. A Luhn-invalid number is never a card.
//
// Heuristics: a match is a reason to look, not proof; a miss proves nothing.
// Nothing here keeps or returns a matched value: callers get kinds and key
// paths only.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/pii_patterns.h"

namespace dsar {

// A kind found in a field, and where: `path` is the JSON key path inside
// the field's value ("backup_contact", "contacts[1].email"), empty when
// found in the value's text itself. A key that itself holds a pattern is
// written "*" in paths, so that no personal value reaches a path.
struct PiiMatch {
  PiiKind kind;
  std::string path;
  bool operator==(const PiiMatch& other) const {
    return kind == other.kind && path == other.path;
  }
};

class PiiDetector {
 public:
  // How deep FindInField looks into JSON: containers nested in containers
  // and JSON text inside JSON strings each count one level.
  static constexpr int kMaxJsonDepth = 8;
  // Longer values are searched as text but not parsed as JSON.
  static constexpr size_t kMaxJsonBytes = 1 << 20;

  // Compiles the patterns. INTERNAL if RE2 refuses one (cannot happen with
  // the built-in patterns unless RE2 changes).
  static absl::StatusOr<std::unique_ptr<PiiDetector>> Create();

  // The process's detector, compiled on first use; aborts with a message if
  // Create fails. Thread-safe: a detector is immutable once built.
  static const PiiDetector& Default();

  ~PiiDetector();

  // The patterns' RE2 sources, in the set's order, for comparing with
  // other tools (the audit scan benchmark's grep -E baseline). Matches of
  // these are candidates: the checks above are not part of them.
  static std::vector<std::string> PatternSources();

  // The kinds occurring anywhere in `text` (free text included: "write to
  // ann@example.org"), each once, in PiiKind order. `context` is the name
  // of the field or JSON key holding the text; it decides only whether a
  // local 7-digit number counts (see above).
  std::vector<PiiKind> KindsInText(std::string_view text,
                                   std::string_view context = "") const;

  // The kinds in one field's value, looking into JSON: when the value (or a
  // string inside it, recursively, up to kMaxJsonDepth) is a JSON object or
  // array, each member is searched with its key as context and reported
  // with its key path. `field` is the field's name (the context of the
  // top-level text). Each (kind, path) once, in the order found.
  std::vector<PiiMatch> FindInField(std::string_view field,
                                    std::string_view value) const;

 private:
  struct Compiled;  // The RE2 objects; pii_detector.cc.
  explicit PiiDetector(std::unique_ptr<Compiled> compiled);

  std::unique_ptr<Compiled> compiled_;
};

}  // namespace dsar

#endif  // DSAR_MODEL_PII_DETECTOR_H_
