#include "model/regulation.h"

namespace dsar {

std::optional<Regulation> ParseRegulation(std::string_view name) {
  if (name == kRegulationGdpr) return Regulation::kGdpr;
  if (name == kRegulationCcpa) return Regulation::kCcpa;
  return std::nullopt;
}

std::string_view RegulationName(Regulation regulation) {
  switch (regulation) {
    case Regulation::kGdpr:
      return kRegulationGdpr;
    case Regulation::kCcpa:
      return kRegulationCcpa;
  }
  return "";  // Not reached: the switch names every regulation.
}

}  // namespace dsar
