#include "engine/workflow_definition.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "model/task_operation.h"

namespace dsar {
namespace {

using json = nlohmann::json;

// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::string_view is its own type and absl::StrCat does not take a
// std::string_view. The helpers below use absl::string_view; the public API
// (the header) keeps std::string_view and converts at the boundary.

constexpr absl::string_view kStatesAll = "States.ALL";
constexpr absl::string_view kDefaultName = "dsar";
constexpr absl::string_view kSupportedItemsPath = "$.stores";
constexpr size_t kVersionHashChars = 12;

// Every error names the field at fault: "<path>: <what is wrong>".
absl::Status Invalid(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

// "States.Export" + "Retry" -> "States.Export.Retry"; "" + "StartAt" ->
// "StartAt".
std::string Field(absl::string_view base, absl::string_view field) {
  if (base.empty()) return std::string(field);
  return absl::StrCat(base, ".", field);
}

std::string Index(absl::string_view base, size_t i) {
  return absl::StrCat(base, "[", i, "]");
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// Rejects every key of `object` that is not in `allowed`.
absl::Status RejectUnknownFields(
    const json& object, absl::string_view path,
    std::initializer_list<absl::string_view> allowed,
    std::initializer_list<absl::string_view> extra = {}) {
  for (const auto& [key, value] : object.items()) {
    const bool known =
        std::find(allowed.begin(), allowed.end(), key) != allowed.end() ||
        std::find(extra.begin(), extra.end(), key) != extra.end();
    if (!known) return Invalid(Field(path, key), "unknown field");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequireString(const json& value,
                                          absl::string_view path,
                                          bool allow_empty = false) {
  if (!value.is_string()) return Invalid(path, "must be a string");
  std::string s = value.get<std::string>();
  if (!allow_empty && s.empty()) return Invalid(path, "must not be empty");
  return s;
}

absl::StatusOr<int64_t> RequireInteger(const json& value,
                                       absl::string_view path, int64_t min,
                                       int64_t max) {
  if (!value.is_number_integer()) return Invalid(path, "must be an integer");
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Invalid(path, absl::StrCat("must be <= ", max));
  }
  const int64_t v = value.get<int64_t>();
  if (v < min) return Invalid(path, absl::StrCat("must be >= ", min));
  if (v > max) return Invalid(path, absl::StrCat("must be <= ", max));
  return v;
}

absl::StatusOr<double> RequireNumber(const json& value, absl::string_view path,
                                     double min) {
  if (!value.is_number()) return Invalid(path, "must be a number");
  const double v = value.get<double>();
  if (!(v >= min)) return Invalid(path, absl::StrCat("must be >= ", min));
  return v;
}

// The supported JSONPath subset: "$" or "$.a.b" with segments of letters,
// digits, '_' and '-'.
bool IsSupportedPath(absl::string_view path) {
  if (path == "$") return true;
  if (path.size() < 3 || path.substr(0, 2) != "$.") return false;
  for (absl::string_view segment : absl::StrSplit(path.substr(2), '.')) {
    if (segment.empty()) return false;
    for (char c : segment) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!ok) return false;
    }
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ParseErrorEquals(
    const json& parent, absl::string_view parent_path) {
  const std::string path = Field(parent_path, "ErrorEquals");
  if (!parent.contains("ErrorEquals")) return Invalid(path, "missing");
  const json& list = parent["ErrorEquals"];
  if (!list.is_array() || list.empty()) {
    return Invalid(path, "must be a non-empty array of error names");
  }
  std::vector<std::string> errors;
  for (size_t i = 0; i < list.size(); ++i) {
    ASSIGN_OR_RETURN(std::string error, RequireString(list[i], Index(path, i)));
    errors.push_back(std::move(error));
  }
  const bool has_all =
      std::find(errors.begin(), errors.end(), kStatesAll) != errors.end();
  if (has_all && errors.size() != 1) {
    return Invalid(path, "\"States.ALL\" must be the only error name");
  }
  return errors;
}

bool MatchesAll(const std::vector<std::string>& error_equals) {
  return error_equals.size() == 1 && error_equals[0] == kStatesAll;
}

absl::Status ParseNextOrEnd(const json& sj, absl::string_view path, State* st) {
  const bool has_next = sj.contains("Next");
  const bool has_end = sj.contains("End");
  if (has_next && has_end) {
    return Invalid(Field(path, "End"), "cannot be combined with Next");
  }
  if (!has_next && !has_end) {
    return Invalid(Field(path, "Next"),
                   "missing: the state needs exactly one of Next or End");
  }
  if (has_next) {
    ASSIGN_OR_RETURN(st->next, RequireString(sj["Next"], Field(path, "Next")));
  } else {
    if (!sj["End"].is_boolean() || !sj["End"].get<bool>()) {
      return Invalid(Field(path, "End"),
                     "must be true (use Next to continue instead)");
    }
    st->end = true;
  }
  return absl::OkStatus();
}

absl::Status ParseRetry(const json& sj, absl::string_view state_path,
                        State* st) {
  const std::string path = Field(state_path, "Retry");
  const json& list = sj["Retry"];
  if (!list.is_array()) return Invalid(path, "must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string rpath = Index(path, i);
    const json& rj = list[i];
    if (!rj.is_object()) return Invalid(rpath, "must be an object");
    RETURN_IF_ERROR(RejectUnknownFields(
        rj, rpath,
        {"ErrorEquals", "IntervalSeconds", "BackoffRate", "MaxAttempts",
         "MaxDelaySeconds", "JitterStrategy", "Comment"}));
    Retrier r;
    ASSIGN_OR_RETURN(r.error_equals, ParseErrorEquals(rj, rpath));
    if (MatchesAll(r.error_equals) && i + 1 != list.size()) {
      return Invalid(Field(rpath, "ErrorEquals"),
                     "a \"States.ALL\" retrier must be the last one");
    }
    if (rj.contains("IntervalSeconds")) {
      ASSIGN_OR_RETURN(r.interval_seconds,
                       RequireNumber(rj["IntervalSeconds"],
                                     Field(rpath, "IntervalSeconds"), 0));
    }
    if (rj.contains("BackoffRate")) {
      ASSIGN_OR_RETURN(
          r.backoff_rate,
          RequireNumber(rj["BackoffRate"], Field(rpath, "BackoffRate"), 1));
    }
    if (rj.contains("MaxAttempts")) {
      ASSIGN_OR_RETURN(
          int64_t attempts,
          RequireInteger(rj["MaxAttempts"], Field(rpath, "MaxAttempts"), 0,
                         std::numeric_limits<int>::max()));
      r.max_attempts = static_cast<int>(attempts);
    }
    if (rj.contains("MaxDelaySeconds")) {
      ASSIGN_OR_RETURN(r.max_delay_seconds,
                       RequireNumber(rj["MaxDelaySeconds"],
                                     Field(rpath, "MaxDelaySeconds"), 0));
    }
    if (rj.contains("JitterStrategy")) {
      const std::string jpath = Field(rpath, "JitterStrategy");
      ASSIGN_OR_RETURN(std::string jitter,
                       RequireString(rj["JitterStrategy"], jpath));
      if (jitter != "FULL" && jitter != "NONE") {
        return Invalid(jpath, "must be \"FULL\" or \"NONE\"");
      }
      r.full_jitter = jitter == "FULL";
    }
    st->retry.push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status ParseCatch(const json& sj, absl::string_view state_path,
                        State* st) {
  const std::string path = Field(state_path, "Catch");
  const json& list = sj["Catch"];
  if (!list.is_array()) return Invalid(path, "must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string cpath = Index(path, i);
    const json& cj = list[i];
    if (!cj.is_object()) return Invalid(cpath, "must be an object");
    RETURN_IF_ERROR(
        RejectUnknownFields(cj, cpath, {"ErrorEquals", "Next", "Comment"}));
    Catcher c;
    ASSIGN_OR_RETURN(c.error_equals, ParseErrorEquals(cj, cpath));
    if (MatchesAll(c.error_equals) && i + 1 != list.size()) {
      return Invalid(Field(cpath, "ErrorEquals"),
                     "a \"States.ALL\" catcher must be the last one");
    }
    if (!cj.contains("Next")) return Invalid(Field(cpath, "Next"), "missing");
    ASSIGN_OR_RETURN(c.next, RequireString(cj["Next"], Field(cpath, "Next")));
    st->catchers.push_back(std::move(c));
  }
  return absl::OkStatus();
}

constexpr std::pair<const char*, ChoiceRule::Op> kChoiceOps[] = {
    {"StringEquals", ChoiceRule::Op::kStringEquals},
    {"NumericEquals", ChoiceRule::Op::kNumericEquals},
    {"BooleanEquals", ChoiceRule::Op::kBooleanEquals},
    {"IsPresent", ChoiceRule::Op::kIsPresent},
    {"And", ChoiceRule::Op::kAnd},
    {"Or", ChoiceRule::Op::kOr},
    {"Not", ChoiceRule::Op::kNot},
};

absl::Status ParseChoiceRule(const json& rj, const std::string& path,
                             bool top_level, ChoiceRule* rule) {
  if (!rj.is_object()) return Invalid(path, "must be an object");
  absl::string_view op_name;
  for (const auto& [name, op] : kChoiceOps) {
    if (!rj.contains(name)) continue;
    if (!op_name.empty()) {
      return Invalid(Field(path, name),
                     absl::StrCat("cannot be combined with ", op_name));
    }
    op_name = name;
    rule->op = op;
  }
  if (op_name.empty()) {
    return Invalid(path,
                   "needs one of StringEquals, NumericEquals, BooleanEquals, "
                   "IsPresent, And, Or, Not");
  }
  if (!top_level && rj.contains("Next")) {
    return Invalid(Field(path, "Next"),
                   "only allowed on top-level rules of Choices");
  }
  RETURN_IF_ERROR(RejectUnknownFields(rj, path, {"Variable", "Next", op_name}));

  const json& operand = rj[std::string(op_name)];
  const std::string op_path = Field(path, op_name);
  switch (rule->op) {
    case ChoiceRule::Op::kAnd:
    case ChoiceRule::Op::kOr:
      if (!operand.is_array() || operand.empty()) {
        return Invalid(op_path, "must be a non-empty array of rules");
      }
      for (size_t i = 0; i < operand.size(); ++i) {
        ChoiceRule child;
        RETURN_IF_ERROR(
            ParseChoiceRule(operand[i], Index(op_path, i), false, &child));
        rule->children.push_back(std::move(child));
      }
      break;
    case ChoiceRule::Op::kNot: {
      ChoiceRule child;
      RETURN_IF_ERROR(ParseChoiceRule(operand, op_path, false, &child));
      rule->children.push_back(std::move(child));
      break;
    }
    case ChoiceRule::Op::kStringEquals:
      if (!operand.is_string()) return Invalid(op_path, "must be a string");
      break;
    case ChoiceRule::Op::kNumericEquals:
      if (!operand.is_number()) return Invalid(op_path, "must be a number");
      break;
    case ChoiceRule::Op::kBooleanEquals:
    case ChoiceRule::Op::kIsPresent:
      if (!operand.is_boolean()) return Invalid(op_path, "must be a boolean");
      break;
  }

  const bool combinator = rule->op == ChoiceRule::Op::kAnd ||
                          rule->op == ChoiceRule::Op::kOr ||
                          rule->op == ChoiceRule::Op::kNot;
  const std::string var_path = Field(path, "Variable");
  if (combinator) {
    if (rj.contains("Variable")) {
      return Invalid(var_path, absl::StrCat("not allowed with ", op_name));
    }
  } else {
    if (!rj.contains("Variable")) return Invalid(var_path, "missing");
    ASSIGN_OR_RETURN(rule->variable, RequireString(rj["Variable"], var_path));
    if (!IsSupportedPath(rule->variable)) {
      return Invalid(var_path,
                     absl::StrCat("unsupported path ", Quoted(rule->variable),
                                  "; use \"$\" or \"$.field.field\""));
    }
    rule->operand = operand;
  }

  if (top_level) {
    if (!rj.contains("Next")) return Invalid(Field(path, "Next"), "missing");
    ASSIGN_OR_RETURN(rule->next,
                     RequireString(rj["Next"], Field(path, "Next")));
  }
  return absl::OkStatus();
}

absl::StatusOr<StateType> ParseType(const json& sj, absl::string_view path) {
  const std::string type_path = Field(path, "Type");
  if (!sj.contains("Type")) return Invalid(type_path, "missing");
  ASSIGN_OR_RETURN(std::string type, RequireString(sj["Type"], type_path));
  if (type == "Task") return StateType::kTask;
  if (type == "Map") return StateType::kMap;
  if (type == "Choice") return StateType::kChoice;
  if (type == "Wait") return StateType::kWait;
  if (type == "Pass") return StateType::kPass;
  if (type == "Succeed") return StateType::kSucceed;
  if (type == "Fail") return StateType::kFail;
  return Invalid(type_path, absl::StrCat("unknown state type ", Quoted(type)));
}

// "dsar:worker.<operation>" for an operation workers know
// (model/task_operation.h).
bool IsWorkerResource(const std::string& resource) {
  return TaskOperationOfResource(resource).has_value();
}

absl::Status ParseStateMachine(const json& mj, absl::string_view base,
                               bool in_iterator,
                               std::initializer_list<absl::string_view> extra,
                               StateMachine* machine);

absl::Status ParseTask(const json& sj, const std::string& path,
                       bool in_iterator, State* st) {
  RETURN_IF_ERROR(RejectUnknownFields(
      sj, path,
      {"Type", "Comment", "Resource", "Next", "End", "Retry", "Catch",
       "TimeoutSeconds", "HeartbeatSeconds"}));
  RETURN_IF_ERROR(ParseNextOrEnd(sj, path, st));
  const std::string rpath = Field(path, "Resource");
  if (!sj.contains("Resource")) return Invalid(rpath, "missing");
  ASSIGN_OR_RETURN(st->resource, RequireString(sj["Resource"], rpath));
  if (IsWorkerResource(st->resource)) {
    if (!in_iterator) {
      return Invalid(rpath, absl::StrCat(Quoted(st->resource),
                                         " runs once per store and is only "
                                         "allowed inside a Map iterator"));
    }
  } else if (st->resource == kResourceBundle) {
    if (in_iterator) {
      return Invalid(rpath, absl::StrCat(Quoted(st->resource),
                                         " is not allowed inside a Map "
                                         "iterator"));
    }
  } else {
    return Invalid(rpath,
                   absl::StrCat("unknown resource ", Quoted(st->resource)));
  }
  // Accepted for ASL compatibility; the engine's lease settings govern.
  for (const char* field : {"TimeoutSeconds", "HeartbeatSeconds"}) {
    if (sj.contains(field)) {
      RETURN_IF_ERROR(RequireInteger(sj[std::string(field)], Field(path, field),
                                     1, std::numeric_limits<int64_t>::max())
                          .status());
    }
  }
  if (sj.contains("Retry")) RETURN_IF_ERROR(ParseRetry(sj, path, st));
  if (sj.contains("Catch")) RETURN_IF_ERROR(ParseCatch(sj, path, st));
  return absl::OkStatus();
}

absl::Status ParseMap(const json& sj, const std::string& path, bool in_iterator,
                      State* st) {
  if (in_iterator) {
    return Invalid(Field(path, "Type"),
                   "a Map state is not allowed inside a Map iterator");
  }
  for (const char* field : {"Retry", "Catch"}) {
    if (sj.contains(field)) {
      return Invalid(Field(path, field),
                     "not supported on a Map state; put it on the Task "
                     "states of the iterator");
    }
  }
  RETURN_IF_ERROR(RejectUnknownFields(
      sj, path,
      {"Type", "Comment", "Next", "End", "ItemsPath", "MaxConcurrency",
       "ItemOrder", "Iterator", "ItemProcessor"}));
  RETURN_IF_ERROR(ParseNextOrEnd(sj, path, st));

  const std::string items_path = Field(path, "ItemsPath");
  if (!sj.contains("ItemsPath")) {
    return Invalid(items_path, "missing; only \"$.stores\" is supported");
  }
  ASSIGN_OR_RETURN(st->items_path, RequireString(sj["ItemsPath"], items_path));
  if (st->items_path != kSupportedItemsPath) {
    return Invalid(items_path,
                   absl::StrCat("unsupported path ", Quoted(st->items_path),
                                "; only \"$.stores\" is supported"));
  }
  if (sj.contains("MaxConcurrency")) {
    ASSIGN_OR_RETURN(
        int64_t max_concurrency,
        RequireInteger(sj["MaxConcurrency"], Field(path, "MaxConcurrency"), 0,
                       std::numeric_limits<int>::max()));
    st->max_concurrency = static_cast<int>(max_concurrency);
  }
  if (sj.contains("ItemOrder")) {
    const std::string order_path = Field(path, "ItemOrder");
    ASSIGN_OR_RETURN(st->item_order,
                     RequireString(sj["ItemOrder"], order_path, true));
    if (st->item_order != kItemOrderNone &&
        st->item_order != kItemOrderIdentityFlow &&
        st->item_order != kItemOrderEraseAfter) {
      return Invalid(order_path,
                     absl::StrCat("unknown order ", Quoted(st->item_order),
                                  "; use \"\", \"IdentityFlow\" or "
                                  "\"EraseAfter\""));
    }
  }

  const bool has_iterator = sj.contains("Iterator");
  const bool has_processor = sj.contains("ItemProcessor");
  if (has_iterator && has_processor) {
    return Invalid(Field(path, "ItemProcessor"),
                   "cannot be combined with Iterator");
  }
  if (!has_iterator && !has_processor) {
    return Invalid(Field(path, "Iterator"),
                   "missing: a Map state needs an Iterator or ItemProcessor");
  }
  auto iterator = std::make_shared<StateMachine>();
  if (has_iterator) {
    RETURN_IF_ERROR(ParseStateMachine(sj["Iterator"], Field(path, "Iterator"),
                                      true, {}, iterator.get()));
  } else {
    // ProcessorConfig (Mode, ExecutionType) is accepted and ignored: items
    // always run as engine tasks.
    RETURN_IF_ERROR(ParseStateMachine(sj["ItemProcessor"],
                                      Field(path, "ItemProcessor"), true,
                                      {"ProcessorConfig"}, iterator.get()));
  }
  st->iterator = std::move(iterator);
  return absl::OkStatus();
}

absl::Status ParseChoice(const json& sj, const std::string& path, State* st) {
  for (const char* field : {"Next", "End"}) {
    if (sj.contains(field)) {
      return Invalid(Field(path, field),
                     "not allowed on a Choice state; use Choices and Default");
    }
  }
  RETURN_IF_ERROR(
      RejectUnknownFields(sj, path, {"Type", "Comment", "Choices", "Default"}));
  const std::string choices_path = Field(path, "Choices");
  if (!sj.contains("Choices")) {
    return Invalid(choices_path, "missing: a Choice state needs rules");
  }
  const json& choices = sj["Choices"];
  if (!choices.is_array() || choices.empty()) {
    return Invalid(choices_path, "must be a non-empty array of rules");
  }
  for (size_t i = 0; i < choices.size(); ++i) {
    ChoiceRule rule;
    RETURN_IF_ERROR(
        ParseChoiceRule(choices[i], Index(choices_path, i), true, &rule));
    st->choices.push_back(std::move(rule));
  }
  if (sj.contains("Default")) {
    ASSIGN_OR_RETURN(st->default_next,
                     RequireString(sj["Default"], Field(path, "Default")));
  }
  return absl::OkStatus();
}

absl::Status ParseState(const json& sj, const std::string& path,
                        bool in_iterator, State* st) {
  if (!sj.is_object()) return Invalid(path, "must be an object");
  ASSIGN_OR_RETURN(st->type, ParseType(sj, path));
  if (sj.contains("Comment")) {
    ASSIGN_OR_RETURN(st->comment, RequireString(sj["Comment"],
                                                Field(path, "Comment"), true));
  }
  switch (st->type) {
    case StateType::kTask:
      return ParseTask(sj, path, in_iterator, st);
    case StateType::kMap:
      return ParseMap(sj, path, in_iterator, st);
    case StateType::kChoice:
      return ParseChoice(sj, path, st);
    case StateType::kWait: {
      RETURN_IF_ERROR(RejectUnknownFields(
          sj, path, {"Type", "Comment", "Seconds", "Signal", "Next", "End"}));
      RETURN_IF_ERROR(ParseNextOrEnd(sj, path, st));
      const std::string seconds_path = Field(path, "Seconds");
      if (sj.contains("Signal")) {
        // dsar extension: wait for an external signal instead of a time.
        const std::string signal_path = Field(path, "Signal");
        if (sj.contains("Seconds")) {
          return Invalid(seconds_path, "not allowed together with Signal");
        }
        if (!sj["Signal"].is_string() ||
            sj["Signal"].get<std::string>() != kSignalIdentityVerified) {
          return Invalid(
              signal_path,
              absl::StrCat("must be \"", kSignalIdentityVerified, "\""));
        }
        if (in_iterator)
          return Invalid(signal_path, "not supported inside a Map iterator");
        st->signal = sj["Signal"].get<std::string>();
        return absl::OkStatus();
      }
      if (!sj.contains("Seconds")) return Invalid(seconds_path, "missing");
      ASSIGN_OR_RETURN(st->seconds,
                       RequireInteger(sj["Seconds"], seconds_path, 0,
                                      std::numeric_limits<int64_t>::max()));
      return absl::OkStatus();
    }
    case StateType::kPass:
      // Result is accepted and ignored: a Pass state passes its input on.
      RETURN_IF_ERROR(RejectUnknownFields(
          sj, path, {"Type", "Comment", "Next", "End", "Result"}));
      return ParseNextOrEnd(sj, path, st);
    case StateType::kSucceed:
      return RejectUnknownFields(sj, path, {"Type", "Comment"});
    case StateType::kFail:
      RETURN_IF_ERROR(
          RejectUnknownFields(sj, path, {"Type", "Comment", "Error", "Cause"}));
      if (sj.contains("Error")) {
        ASSIGN_OR_RETURN(st->error,
                         RequireString(sj["Error"], Field(path, "Error")));
      }
      if (sj.contains("Cause")) {
        ASSIGN_OR_RETURN(
            st->cause, RequireString(sj["Cause"], Field(path, "Cause"), true));
      }
      return absl::OkStatus();
  }
  return Invalid(Field(path, "Type"), "unhandled state type");
}

// Every transition out of `st`: the path of the field naming it, and the
// target state.
std::vector<std::pair<std::string, std::string>> Transitions(
    const State& st, absl::string_view path) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!st.next.empty()) out.emplace_back(Field(path, "Next"), st.next);
  for (size_t i = 0; i < st.choices.size(); ++i) {
    out.emplace_back(Field(Index(Field(path, "Choices"), i), "Next"),
                     st.choices[i].next);
  }
  if (!st.default_next.empty()) {
    out.emplace_back(Field(path, "Default"), st.default_next);
  }
  for (size_t i = 0; i < st.catchers.size(); ++i) {
    out.emplace_back(Field(Index(Field(path, "Catch"), i), "Next"),
                     st.catchers[i].next);
  }
  return out;
}

// The states reachable from `start` (itself included), in breadth-first
// order. REQUIRES: every transition names a state of `machine`.
std::vector<const State*> ReachableFrom(const StateMachine& machine,
                                        const std::string& start) {
  std::set<std::string, std::less<>> seen = {start};
  std::vector<const State*> order = {machine.Find(start)};
  for (size_t i = 0; i < order.size(); ++i) {
    for (const auto& [path, target] : Transitions(*order[i], "")) {
      if (seen.insert(target).second) order.push_back(machine.Find(target));
    }
  }
  return order;
}

// Rejects a machine with a state from which no path of transitions (Next,
// Choices, Default, Catch) reaches an end: End: true, Succeed or Fail. Every
// such state leads into a cycle with no way out, e.g. Pass states pointing at
// each other, or a Choice whose every branch loops back; the error names the
// states of that cycle, at the first of them. `reached` is
// ReachableFrom(machine, StartAt).
absl::Status CheckEveryStateCanEnd(const StateMachine& machine,
                                   absl::string_view states_path,
                                   const std::vector<const State*>& reached) {
  std::set<std::string, std::less<>> can_end;
  for (const auto& [name, st] : machine.states) {
    if (st.end || st.type == StateType::kSucceed ||
        st.type == StateType::kFail) {
      can_end.insert(name);
    }
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [name, st] : machine.states) {
      if (can_end.count(name) != 0) continue;
      for (const auto& [path, target] : Transitions(st, "")) {
        if (can_end.count(target) != 0) {
          can_end.insert(name);
          grew = true;
          break;
        }
      }
    }
  }
  auto stuck = std::find_if(
      reached.begin(), reached.end(),
      [&](const State* st) { return can_end.count(st->name) == 0; });
  if (stuck == reached.end()) return absl::OkStatus();

  // Everything `trap` reaches is stuck too. Step to a state that cannot get
  // back to `trap` until there is none: then the states `trap` reaches all
  // reach it again, a closed cycle. Each step shrinks the reachable set.
  const State* trap = *stuck;
  std::vector<const State*> cycle = ReachableFrom(machine, trap->name);
  while (true) {
    std::vector<const State*> onward;
    auto deeper =
        std::find_if(cycle.begin(), cycle.end(), [&](const State* st) {
          onward = ReachableFrom(machine, st->name);
          return std::find(onward.begin(), onward.end(), trap) == onward.end();
        });
    if (deeper == cycle.end()) break;
    trap = *deeper;
    cycle = std::move(onward);
  }
  std::string names;
  for (const State* st : cycle) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", Quoted(st->name));
  }
  return Invalid(Field(states_path, trap->name),
                 absl::StrCat("no path to an end (End, Succeed or Fail): "
                              "transitions from ",
                              names, " never leave these states"));
}

// Parses one state machine: the top level (base "") or a Map iterator (base
// "States.<map>.Iterator"). Transitions stay inside the machine.
absl::Status ParseStateMachine(const json& mj, absl::string_view base,
                               bool in_iterator,
                               std::initializer_list<absl::string_view> extra,
                               StateMachine* machine) {
  if (!mj.is_object()) {
    return Invalid(base.empty() ? "$" : base, "must be an object");
  }
  RETURN_IF_ERROR(
      RejectUnknownFields(mj, base, {"StartAt", "States", "Comment"}, extra));
  if (mj.contains("Comment")) {
    RETURN_IF_ERROR(
        RequireString(mj["Comment"], Field(base, "Comment"), true).status());
  }
  const std::string start_path = Field(base, "StartAt");
  if (!mj.contains("StartAt")) return Invalid(start_path, "missing");
  ASSIGN_OR_RETURN(machine->start_at, RequireString(mj["StartAt"], start_path));

  const std::string states_path = Field(base, "States");
  if (!mj.contains("States")) return Invalid(states_path, "missing");
  const json& states = mj["States"];
  if (!states.is_object() || states.empty()) {
    return Invalid(states_path, "must be a non-empty object");
  }
  for (const auto& [name, sj] : states.items()) {
    const std::string path = Field(states_path, name);
    if (name.empty()) return Invalid(path, "state name must not be empty");
    State st;
    st.name = name;
    RETURN_IF_ERROR(ParseState(sj, path, in_iterator, &st));
    machine->states.emplace(name, std::move(st));
  }

  if (machine->Find(machine->start_at) == nullptr) {
    return Invalid(start_path,
                   absl::StrCat("no state named ", Quoted(machine->start_at)));
  }
  for (const auto& [name, st] : machine->states) {
    for (const auto& [path, target] :
         Transitions(st, Field(states_path, name))) {
      if (machine->Find(target) == nullptr) {
        return Invalid(path, absl::StrCat("no state named ", Quoted(target)));
      }
    }
  }

  const std::vector<const State*> reached =
      ReachableFrom(*machine, machine->start_at);
  for (const auto& [name, st] : machine->states) {
    const bool found =
        std::any_of(reached.begin(), reached.end(),
                    [&name = name](const State* r) { return r->name == name; });
    if (!found) {
      return Invalid(Field(states_path, name),
                     absl::StrCat("unreachable: no transition from StartAt ",
                                  Quoted(machine->start_at), " leads here"));
    }
  }
  return CheckEveryStateCanEnd(*machine, states_path, reached);
}

// JSON objects with a repeated key would silently keep the last value (a
// second state with the same name would replace the first), so the parse
// callback records the first duplicate.
class DuplicateKeyCheck {
 public:
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_.empty()) keys_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys_.empty() && parsed.is_string() &&
            !keys_.back().insert(parsed.get<std::string>()).second &&
            duplicate_.empty()) {
          duplicate_ = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  }
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string duplicate_;
};

bool Matches(const std::vector<std::string>& error_equals,
             std::string_view error) {
  for (const std::string& e : error_equals) {
    if (e == kStatesAll || e == error) return true;
  }
  return false;
}

bool EvaluateRule(const ChoiceRule& rule, const json& input) {
  switch (rule.op) {
    case ChoiceRule::Op::kAnd:
      for (const ChoiceRule& child : rule.children) {
        if (!EvaluateRule(child, input)) return false;
      }
      return true;
    case ChoiceRule::Op::kOr:
      for (const ChoiceRule& child : rule.children) {
        if (EvaluateRule(child, input)) return true;
      }
      return false;
    case ChoiceRule::Op::kNot:
      return !rule.children.empty() && !EvaluateRule(rule.children[0], input);
    default:
      break;
  }
  const json* value = ResolvePath(input, rule.variable);
  switch (rule.op) {
    case ChoiceRule::Op::kIsPresent:
      return (value != nullptr) == rule.operand.get<bool>();
    case ChoiceRule::Op::kStringEquals:
      return value != nullptr && value->is_string() &&
             rule.operand.is_string() &&
             value->get<std::string>() == rule.operand.get<std::string>();
    case ChoiceRule::Op::kNumericEquals:
      return value != nullptr && value->is_number() &&
             rule.operand.is_number() &&
             value->get<double>() == rule.operand.get<double>();
    case ChoiceRule::Op::kBooleanEquals:
      return value != nullptr && value->is_boolean() &&
             rule.operand.is_boolean() &&
             value->get<bool>() == rule.operand.get<bool>();
    default:
      return false;
  }
}

}  // namespace

const State* StateMachine::Find(std::string_view name) const {
  auto it = states.find(name);
  return it == states.end() ? nullptr : &it->second;
}

absl::StatusOr<std::shared_ptr<const WorkflowDefinition>>
WorkflowDefinition::Parse(std::string_view text) {
  DuplicateKeyCheck duplicates;
  nlohmann::json document;
  try {
    document =
        nlohmann::json::parse(text.begin(), text.end(), std::ref(duplicates));
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON at byte ", e.byte, ": ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    // Not a syntax error but still the text's fault: a number beyond double
    // (out_of_range 406, "2e308").
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON: ", e.what()));
  }
  if (!duplicates.duplicate().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed JSON: duplicate key ", Quoted(duplicates.duplicate())));
  }
  if (!document.is_object()) {
    return absl::InvalidArgumentError("$: must be a JSON object");
  }

  auto definition = std::make_shared<WorkflowDefinition>();
  std::string name(kDefaultName);
  if (document.contains("Name")) {
    ASSIGN_OR_RETURN(name, RequireString(document["Name"], "Name"));
  }
  if (document.contains("Version")) {
    RETURN_IF_ERROR(RequireString(document["Version"], "Version").status());
  }
  RETURN_IF_ERROR(ParseStateMachine(document, "", /*in_iterator=*/false,
                                    {"Name", "Version"}, &definition->root_));
  definition->json_ = std::string(text);
  definition->version_ =
      absl::StrCat(name, "@", Sha256Hex(text).substr(0, kVersionHashChars));
  return std::shared_ptr<const WorkflowDefinition>(std::move(definition));
}

const json* ResolvePath(const json& input, std::string_view path) {
  const absl::string_view p(path.data(), path.size());
  if (!IsSupportedPath(p)) return nullptr;
  const json* node = &input;
  if (p == "$") return node;
  for (absl::string_view segment : absl::StrSplit(p.substr(2), '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(std::string(segment));
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::optional<std::string> EvaluateChoice(const State& choice,
                                          const json& input) {
  for (const ChoiceRule& rule : choice.choices) {
    if (EvaluateRule(rule, input)) return rule.next;
  }
  if (!choice.default_next.empty()) return choice.default_next;
  return std::nullopt;
}

int FindRetrier(const State& task, std::string_view error) {
  for (size_t i = 0; i < task.retry.size(); ++i) {
    if (Matches(task.retry[i].error_equals, error)) return static_cast<int>(i);
  }
  return -1;
}

int FindCatcher(const State& task, std::string_view error) {
  for (size_t i = 0; i < task.catchers.size(); ++i) {
    if (Matches(task.catchers[i].error_equals, error)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

absl::Duration RetryDelay(const Retrier& retrier, uint32_t retry_count,
                          double unit_random) {
  if (retrier.interval_seconds <= 0) return absl::ZeroDuration();
  double seconds =
      retrier.interval_seconds *
      std::pow(retrier.backoff_rate, static_cast<double>(retry_count));
  if (retrier.max_delay_seconds > 0) {
    seconds = std::min(seconds, retrier.max_delay_seconds);
  }
  if (retrier.full_jitter) {
    seconds *= std::clamp(unit_random, 0.0, 1.0);
  }
  return absl::Seconds(seconds);
}

}  // namespace dsar
