#ifndef DSAR_MODEL_REGULATION_H_
#define DSAR_MODEL_REGULATION_H_

// The regulations a request is made under, by the names the public API
// carries in v1::Request.regulation. The deadlines they impose are computed
// by dsard alone (engine/deadlines.h); other programs only name them.

#include <optional>
#include <string_view>

namespace dsar {

// Character arrays, like the proto's string fields they are compared with and
// stored into, so that `request.regulation() == kRegulationGdpr` and
// `set_regulation(kRegulationGdpr)` read as they would with a literal.
inline constexpr char kRegulationGdpr[] = "GDPR";
inline constexpr char kRegulationCcpa[] = "CCPA";
// The regulation of a request that names none.
inline constexpr const char* kDefaultRegulation = kRegulationGdpr;

enum class Regulation { kGdpr, kCcpa };

// The regulation named exactly `name` ("GDPR" or "CCPA"); nullopt otherwise,
// including for "" (callers substitute kDefaultRegulation first where the
// API allows omitting it) and "gdpr".
std::optional<Regulation> ParseRegulation(std::string_view name);

// "GDPR" or "CCPA".
std::string_view RegulationName(Regulation regulation);

}  // namespace dsar

#endif  // DSAR_MODEL_REGULATION_H_
