#include "model/pii_detector.h"

#include <arpa/inet.h>
#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

// What a pattern's match must also satisfy.
enum class Check {
  kNone,
  kInternationalPhone,  // 7 to 15 digits.
  kNationalPhone,       // 10 or 11 digits.
  kLocalPhone,          // Only under a field or key naming a contact means.
  kIpv6,                // inet_pton accepts it; 3 or more non-empty groups.
  kCard,                // Starts with 2-6; 13-19 digits; Luhn.
  kSsn,                 // Area not 000, 666 or 9xx; group, serial not zero.
};

struct PatternSpec {
  PiiKind kind;
  Check check;
  const char* regex;
};

// RE2 syntax; \b is an ASCII word boundary. Each is searched unanchored.
constexpr std::array<PatternSpec, 9> kPatterns = {{
    {PiiKind::kEmail, Check::kNone,
     R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})"},
    {PiiKind::kPhone, Check::kInternationalPhone,
     R"(\+[0-9](?:[ ().\-]?[0-9]){6,14}\b)"},
    // (555) 010-4477, 555-010-4477, 555.010.4477, 555 010 4477.
    {PiiKind::kPhone, Check::kNationalPhone,
     R"((?:\([0-9]{3}\) ?|\b[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}\b)"},
    // A trunk '0': 07700 900123, 020 7946 0958, 07700900123.
    {PiiKind::kPhone, Check::kNationalPhone,
     R"(\b0[0-9]{2,4}[ \-]?[0-9]{3,4}[ \-]?[0-9]{3,4}\b)"},
    {PiiKind::kPhone, Check::kLocalPhone, R"(\b[2-9][0-9]{2}[.\-][0-9]{4}\b)"},
    {PiiKind::kIpAddress, Check::kNone,
     R"(\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3})"
     R"((?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b)"},
    {PiiKind::kIpAddress, Check::kIpv6,
     R"((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})"},
    {PiiKind::kPaymentCard, Check::kCard, R"(\b[0-9](?:[ \-]?[0-9]){12,18}\b)"},
    {PiiKind::kNationalId, Check::kSsn, R"(\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b)"},
}};

// The UK NI number ("QQ 12 34 56 C") has a pattern of its own below the
// array only to keep the table readable.
constexpr PatternSpec kNino = {
    PiiKind::kNationalId, Check::kNone,
    R"(\b[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]\b)"};

int CountDigits(absl::string_view text) {
  return static_cast<int>(std::count_if(text.begin(), text.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  }));
}

bool NamesContactMeans(absl::string_view context) {
  const std::string name = absl::AsciiStrToLower(context);
  for (absl::string_view part :
       {"phone", "mobile", "contact", "msisdn", "whatsapp"}) {
    if (absl::StrContains(name, part)) return true;
  }
  for (absl::string_view word :
       absl::StrSplit(name, absl::ByAnyChar("_-. "), absl::SkipEmpty())) {
    if (word == "tel" || word == "cell" || word == "fax" || word == "sms") {
      return true;
    }
  }
  return false;
}

bool IsIpv6(absl::string_view text) {
  int groups = 0;
  for (absl::string_view group : absl::StrSplit(text, ':')) {
    if (!group.empty()) ++groups;
  }
  if (groups < 3) return false;
  std::string copy(text);
  unsigned char buffer[16];
  return inet_pton(AF_INET6, copy.c_str(), buffer) == 1;
}

bool IsIssuedSsn(absl::string_view v) {
  absl::string_view area = v.substr(0, 3);
  return area != "000" && area != "666" && v[0] != '9' &&
         v.substr(4, 2) != "00" && v.substr(7, 4) != "0000";
}

bool Passes(Check check, absl::string_view match, absl::string_view context) {
  switch (check) {
    case Check::kNone:
      return true;
    case Check::kInternationalPhone: {
      int digits = CountDigits(match);
      return digits >= 7 && digits <= 15;
    }
    case Check::kNationalPhone: {
      int digits = CountDigits(match);
      return digits >= 10 && digits <= 11;
    }
    case Check::kLocalPhone:
      return NamesContactMeans(context);
    case Check::kIpv6:
      return IsIpv6(match);
    case Check::kCard:
      return match[0] >= '2' && match[0] <= '6' &&
             LooksLikePaymentCard(std::string_view(match.data(), match.size()));
    case Check::kSsn:
      return IsIssuedSsn(match);
  }
  return false;
}

absl::string_view View(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

}  // namespace

struct PiiDetector::Compiled {
  std::unique_ptr<RE2::Set> set;
  std::vector<PatternSpec> specs;
  std::vector<std::unique_ptr<RE2>> regexes;  // One per spec, same order.
};

PiiDetector::PiiDetector(std::unique_ptr<Compiled> compiled)
    : compiled_(std::move(compiled)) {}

PiiDetector::~PiiDetector() = default;

absl::StatusOr<std::unique_ptr<PiiDetector>> PiiDetector::Create() {
  RE2::Options options;
  options.set_log_errors(false);
  auto compiled = std::make_unique<Compiled>();
  compiled->set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  compiled->specs.assign(kPatterns.begin(), kPatterns.end());
  compiled->specs.push_back(kNino);
  for (const PatternSpec& spec : compiled->specs) {
    std::string error;
    if (compiled->set->Add(spec.regex, &error) < 0) {
      return absl::InternalError(
          absl::StrCat("PII pattern ", spec.regex, ": ", error));
    }
    auto regex = std::make_unique<RE2>(spec.regex, options);
    if (!regex->ok()) {
      return absl::InternalError(
          absl::StrCat("PII pattern ", spec.regex, ": ", regex->error()));
    }
    compiled->regexes.push_back(std::move(regex));
  }
  if (!compiled->set->Compile()) {
    return absl::InternalError("PII patterns: RE2::Set did not compile");
  }
  return std::unique_ptr<PiiDetector>(new PiiDetector(std::move(compiled)));
}

const PiiDetector& PiiDetector::Default() {
  static const PiiDetector* detector = [] {
    absl::StatusOr<std::unique_ptr<PiiDetector>> created = Create();
    if (!created.ok()) {
      // Invariant: the built-in patterns compile.
      std::fprintf(stderr, "PiiDetector: %s\n",
                   std::string(created.status().message()).c_str());
      std::abort();
    }
    return created->release();
  }();
  return *detector;
}

std::vector<std::string> PiiDetector::PatternSources() {
  std::vector<std::string> sources;
  for (const PatternSpec& spec : kPatterns) sources.push_back(spec.regex);
  sources.push_back(kNino.regex);
  return sources;
}

std::vector<PiiKind> PiiDetector::KindsInText(std::string_view text,
                                              std::string_view context) const {
  std::vector<PiiKind> kinds;
  if (text.empty()) return kinds;
  // This RE2 (Debian 12) takes re2::StringPiece, not std::string_view.
  const re2::StringPiece input(text.data(), text.size());
  std::vector<int> hits;
  if (!compiled_->set->Match(input, &hits, nullptr)) return kinds;
  std::sort(hits.begin(), hits.end());
  // Spans of confirmed cards: a phone pattern inside one is the card's
  // digits, not a phone number.
  std::vector<std::pair<size_t, size_t>> card_spans;
  std::vector<bool> found(static_cast<size_t>(PiiKind::kBirthDate) + 1, false);
  // Cards first (their spans rule out phones); then in pattern order.
  std::stable_sort(hits.begin(), hits.end(), [&](int a, int b) {
    return (compiled_->specs[a].check == Check::kCard) >
           (compiled_->specs[b].check == Check::kCard);
  });
  for (int index : hits) {
    const PatternSpec& spec = compiled_->specs[index];
    if (found[static_cast<size_t>(spec.kind)]) continue;
    const RE2& regex = *compiled_->regexes[index];
    size_t position = 0;
    re2::StringPiece match;
    while (position <= input.size() &&
           regex.Match(input, position, input.size(), RE2::UNANCHORED, &match,
                       1)) {
      size_t start = static_cast<size_t>(match.data() - input.data());
      size_t end = start + match.size();
      position = end > start ? end : start + 1;
      bool inside_card = spec.kind == PiiKind::kPhone &&
                         std::any_of(card_spans.begin(), card_spans.end(),
                                     [&](const std::pair<size_t, size_t>& s) {
                                       return start < s.second && s.first < end;
                                     });
      if (inside_card ||
          !Passes(spec.check, absl::string_view(match.data(), match.size()),
                  View(context))) {
        continue;
      }
      if (spec.kind == PiiKind::kPaymentCard) {
        card_spans.emplace_back(start, end);
        continue;  // Every card's span is needed, not only the first.
      }
      found[static_cast<size_t>(spec.kind)] = true;
      break;
    }
    if (!card_spans.empty())
      found[static_cast<size_t>(PiiKind::kPaymentCard)] = true;
  }
  for (size_t kind = 0; kind < found.size(); ++kind) {
    if (found[kind]) kinds.push_back(static_cast<PiiKind>(kind));
  }
  return kinds;
}

namespace {

using Json = nlohmann::json;

void AddMatch(std::vector<PiiMatch>* found, PiiKind kind,
              const std::string& path) {
  PiiMatch match{kind, path};
  if (std::find(found->begin(), found->end(), match) == found->end()) {
    found->push_back(std::move(match));
  }
}

// Text that may be a JSON object or array (first non-space is { or [).
bool MayBeJsonContainer(absl::string_view text) {
  absl::string_view stripped = absl::StripLeadingAsciiWhitespace(text);
  return !stripped.empty() && (stripped[0] == '{' || stripped[0] == '[');
}

class JsonWalk {
 public:
  JsonWalk(const PiiDetector& detector, std::vector<PiiMatch>* found)
      : detector_(detector), found_(found) {}

  // `text` found at `path` under the name `context`.
  void Text(absl::string_view text, absl::string_view context,
            const std::string& path, int depth) {
    if (depth < PiiDetector::kMaxJsonDepth && MayBeJsonContainer(text) &&
        text.size() <= PiiDetector::kMaxJsonBytes) {
      Json json = Json::parse(text.begin(), text.end(), nullptr,
                              /*allow_exceptions=*/false);
      if (!json.is_discarded() && json.is_structured()) {
        Value(json, context, path, depth + 1);
        return;
      }
    }
    for (PiiKind kind : detector_.KindsInText(
             std::string_view(text.data(), text.size()),
             std::string_view(context.data(), context.size()))) {
      AddMatch(found_, kind, path);
    }
  }

  void Value(const Json& json, absl::string_view context,
             const std::string& path, int depth) {
    switch (json.type()) {
      case Json::value_t::string: {
        const std::string& text = json.get_ref<const std::string&>();
        Text(text, context, path, depth);
        return;
      }
      case Json::value_t::number_integer:
      case Json::value_t::number_unsigned:
        Text(json.dump(), context, path, depth);
        return;
      case Json::value_t::object:
        if (depth > PiiDetector::kMaxJsonDepth) return;
        for (const auto& [key, member] : json.items()) {
          std::string segment = Segment(key, path);
          std::string child = path.empty() ? segment : path + "." + segment;
          Value(member, key, child, depth + 1);
        }
        return;
      case Json::value_t::array:
        if (depth > PiiDetector::kMaxJsonDepth) return;
        for (size_t i = 0; i < json.size(); ++i) {
          Value(json[i], context, absl::StrCat(path, "[", i, "]"), depth + 1);
        }
        return;
      default:
        return;
    }
  }

 private:
  // A key as a path segment: "*" (reported as found at the parent) when the
  // key itself holds a pattern.
  std::string Segment(const std::string& key, const std::string& parent) {
    std::vector<PiiKind> kinds = detector_.KindsInText(key);
    if (kinds.empty()) return key;
    for (PiiKind kind : kinds) {
      AddMatch(found_, kind, parent.empty() ? "*" : parent + ".*");
    }
    return "*";
  }

  const PiiDetector& detector_;
  std::vector<PiiMatch>* found_;
};

}  // namespace

std::vector<PiiMatch> PiiDetector::FindInField(std::string_view field,
                                               std::string_view value) const {
  std::vector<PiiMatch> found;
  // Fast path: when no pattern occurs anywhere in the raw text, none occurs
  // in any JSON string inside it either, unless an escape (\n, \u0040 ...)
  // decodes to text that matches or makes a word boundary.
  if (value.find('\\') == std::string_view::npos &&
      !compiled_->set->Match(re2::StringPiece(value.data(), value.size()),
                             nullptr, nullptr)) {
    return found;
  }
  JsonWalk walk(*this, &found);
  walk.Text(View(value), View(field), "", 0);
  return found;
}

}  // namespace dsar
