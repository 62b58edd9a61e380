// WorkflowDefinition::Parse over arbitrary JSON: dsard loads definitions from
// files an operator writes (--workflow), and each request pins the one it
// started with. A definition that parses must be one the interpreter can
// walk: every transition names a state, retries have a sane delay, Choice
// rules evaluate.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/workflow_definition.h"
#include "fuzz/fuzz_check.h"
#include "nlohmann/json.hpp"

namespace {

// A request's data as the interpreter hands it to Choice states.
const nlohmann::json& SampleInput() {
  static const nlohmann::json* input = new nlohmann::json(nlohmann::json::parse(
      R"({"type": "ACCESS", "regulation": "GDPR", "verified": true,
          "count": 3, "stores": [{"name": "accounts"}, {"name": "orders"}],
          "subject": {"email": "ann@example.com"}})"));
  return *input;
}

void CheckMachine(const dsar::StateMachine& machine, int depth) {
  FUZZ_CHECK(depth < 1000, "Map nesting");
  FUZZ_CHECK(machine.Find(machine.start_at) != nullptr, machine.start_at);
  for (const auto& [name, state] : machine.states) {
    FUZZ_CHECK(state.name == name, name);
    if (!state.next.empty()) {
      FUZZ_CHECK(machine.Find(state.next) != nullptr, state.next);
    }
    for (const dsar::Catcher& catcher : state.catchers) {
      FUZZ_CHECK(machine.Find(catcher.next) != nullptr, catcher.next);
    }
    for (const dsar::Retrier& retrier : state.retry) {
      for (uint32_t n = 0; n < 64; ++n) {
        absl::Duration delay = dsar::RetryDelay(retrier, n, 0.5);
        FUZZ_CHECK(delay >= absl::ZeroDuration(), name);
      }
    }
    (void)dsar::FindRetrier(state, "States.TaskFailed");
    (void)dsar::FindCatcher(state, "States.Timeout");
    if (state.type == dsar::StateType::kChoice) {
      std::optional<std::string> next =
          dsar::EvaluateChoice(state, SampleInput());
      if (next.has_value()) FUZZ_CHECK(machine.Find(*next) != nullptr, *next);
      (void)dsar::EvaluateChoice(state, nlohmann::json());
    }
    if (state.type == dsar::StateType::kMap) {
      FUZZ_CHECK(state.iterator != nullptr, name);
      CheckMachine(*state.iterator, depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::shared_ptr<const dsar::WorkflowDefinition>> definition =
      dsar::WorkflowDefinition::Parse(json);
  if (!definition.ok()) {
    FUZZ_CHECK(definition.status().code() == absl::StatusCode::kInvalidArgument,
               definition.status().ToString());
    return 0;
  }
  CheckMachine((*definition)->root(), 0);
  // The version is a function of the text alone (requests pin it).
  absl::StatusOr<std::shared_ptr<const dsar::WorkflowDefinition>> again =
      dsar::WorkflowDefinition::Parse((*definition)->json());
  FUZZ_CHECK(again.ok(), again.status().ToString());
  FUZZ_CHECK((*again)->version() == (*definition)->version(),
             (*definition)->version());
  return 0;
}
