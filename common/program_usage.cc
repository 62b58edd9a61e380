#include "common/program_usage.h"

#include <string>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace dsar {

void SetProgramUsage(absl::string_view usage, absl::string_view main_file) {
  absl::SetProgramUsageMessage(usage);
  // The registry reports a flag's file as its __FILE__ after the configured
  // normalize_filename (by default: leading slashes dropped), so it is a
  // suffix of the same file's __FILE__ here.
  auto defined_in_main =
      [main = std::string(main_file)](absl::string_view filename) {
        return !filename.empty() && absl::EndsWith(main, filename);
      };
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = defined_in_main;
  config.contains_help_flags = defined_in_main;
  config.contains_helppackage_flags = defined_in_main;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace dsar
