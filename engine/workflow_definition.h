#ifndef DSAR_ENGINE_WORKFLOW_DEFINITION_H_
#define DSAR_ENGINE_WORKFLOW_DEFINITION_H_

// A workflow definition: the subset of Amazon States Language that the
// engine interprets (docs/workflow-language.md). Parsed and validated once on
// load; the engine then walks the immutable structure.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dsar {

enum class StateType { kTask, kMap, kChoice, kWait, kPass, kSucceed, kFail };

// Task resources the engine knows. Worker resources are valid only inside a
// Map iterator (each item is one store); builtin ones only at top level.
inline constexpr std::string_view kResourceWorkerExport = "dsar:worker.export";
inline constexpr std::string_view kResourceWorkerDiscover =
    "dsar:worker.discover";
inline constexpr std::string_view kResourceWorkerErase = "dsar:worker.erase";
inline constexpr std::string_view kResourceWorkerRectify =
    "dsar:worker.rectify";
inline constexpr std::string_view kResourceWorkerRestrict =
    "dsar:worker.restrict";
inline constexpr std::string_view kResourceWorkerObject = "dsar:worker.object";
inline constexpr std::string_view kResourceBundle = "dsar:bundle";

// Signals a Wait state can wait for (the "Signal" field, an extension to
// ASL). IdentityVerified: the subject proved who they are (a one-time code)
// or the caller attested it when creating the request.
inline constexpr char kSignalIdentityVerified[] = "IdentityVerified";

// Map item orders (the "ItemOrder" field, an extension to ASL).
inline constexpr std::string_view kItemOrderNone = "";
// An item starts after the stores in its identities_from have finished.
inline constexpr std::string_view kItemOrderIdentityFlow = "IdentityFlow";
// An item starts after the stores in its erase_after have finished. Used for
// erasure, which follows a discovery pass, so identities_from is ignored.
inline constexpr std::string_view kItemOrderEraseAfter = "EraseAfter";

struct Retrier {
  std::vector<std::string> error_equals;  // "States.ALL" matches any error.
  double interval_seconds = 1;            // IntervalSeconds, >= 0.
  double backoff_rate = 2;                // BackoffRate, >= 1.
  int max_attempts = 3;                   // MaxAttempts, >= 0 (0: never retry).
  double max_delay_seconds = 0;           // MaxDelaySeconds, 0: no cap.
  bool full_jitter = false;               // JitterStrategy "FULL" or "NONE".
};

struct Catcher {
  std::vector<std::string> error_equals;
  std::string next;
};

// A Choice rule: a comparison (variable + operator + operand) or a
// combinator (And, Or with `children`; Not with one child).
struct ChoiceRule {
  enum class Op {
    kStringEquals,
    kNumericEquals,
    kBooleanEquals,
    kIsPresent,
    kAnd,
    kOr,
    kNot
  };
  Op op = Op::kStringEquals;
  std::string variable;  // JSONPath subset: "$" or "$.a.b".
  nlohmann::json operand;
  std::vector<ChoiceRule> children;
  std::string next;  // Only on top-level rules.
};

struct StateMachine;

struct State {
  std::string name;
  StateType type = StateType::kPass;
  std::string next;  // Empty when `end` (or for Choice/Succeed/Fail).
  bool end = false;
  std::string comment;

  // Task.
  std::string resource;
  std::vector<Retrier> retry;
  std::vector<Catcher> catchers;  // "Catch".

  // Map.
  std::string items_path;   // Only "$.stores" is supported.
  int max_concurrency = 0;  // 0: unlimited.
  std::string item_order;   // One of the kItemOrder* values.
  std::shared_ptr<const StateMachine> iterator;  // "Iterator"/"ItemProcessor".

  // Choice.
  std::vector<ChoiceRule> choices;
  std::string default_next;  // "Default"; may be empty.

  // Wait: `seconds`, or until `signal` arrives (dsar extension).
  int64_t seconds = 0;
  std::string signal;

  // Fail.
  std::string error;
  std::string cause;
};

struct StateMachine {
  std::string start_at;
  std::map<std::string, State, std::less<>> states;

  // nullptr when there is no state with that name.
  const State* Find(std::string_view name) const;
};

class WorkflowDefinition {
 public:
  // Parses and validates `json`. INVALID_ARGUMENT names the state and field
  // at fault, e.g. `States.Export.Retry[0].BackoffRate: must be >= 1`,
  // `States.Bundle.Next: no state named "Finalise"`, or `StartAt: ...`.
  // Rejected: unknown fields and types, missing Next/End, both Next and End,
  // transitions to unknown states, states nothing can reach, states that
  // cannot reach an end (End, Succeed or Fail) because every path from them
  // loops, worker resources outside a Map iterator, builtin resources inside
  // one. Map iterators are checked the same way as the top level.
  // `version` is "<name>@<first 12 hex of SHA-256 of json>" where name is the
  // optional top-level "Name" field (default "dsar").
  static absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> Parse(
      std::string_view json);

  // The built-in DSAR workflow (engine/default_workflow.json, compiled in).
  static std::string_view DefaultJson();

  const StateMachine& root() const { return root_; }
  const std::string& version() const { return version_; }
  const std::string& json() const { return json_; }

 private:
  StateMachine root_;
  std::string version_;
  std::string json_;
};

// Evaluates a Choice state against `input`. Returns the Next of the first
// matching rule, else the Default, else std::nullopt (States.NoChoiceMatched).
std::optional<std::string> EvaluateChoice(const State& choice,
                                          const nlohmann::json& input);

// Resolves a JSONPath of the supported subset; nullptr when absent.
const nlohmann::json* ResolvePath(const nlohmann::json& input,
                                  std::string_view path);

// Index of the first Retrier/Catcher whose ErrorEquals matches `error`, or -1.
int FindRetrier(const State& task, std::string_view error);
int FindCatcher(const State& task, std::string_view error);

// Delay before retry number `retry_count` (0 for the first retry):
// IntervalSeconds * BackoffRate^retry_count, capped by MaxDelaySeconds, and
// with FULL jitter a uniform value in [0, that]. `unit_random` in [0, 1).
absl::Duration RetryDelay(const Retrier& retrier, uint32_t retry_count,
                          double unit_random);

}  // namespace dsar

#endif  // DSAR_ENGINE_WORKFLOW_DEFINITION_H_
