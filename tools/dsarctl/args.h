#ifndef DSAR_TOOLS_DSARCTL_ARGS_H_
#define DSAR_TOOLS_DSARCTL_ARGS_H_

// The command line, parsed against the command table (commands.h).

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "tools/dsarctl/commands.h"

namespace dsarctl {

struct CommandLine {
  const CommandSpec* command = nullptr;  // nullptr when none was given.
  bool help = false;                     // -h/--help anywhere.
  std::string config_path;               // --config.
  // Global settings (--addr, --tls, -o ...) in the order given, to be
  // applied after the config file and the environment.
  std::vector<std::pair<std::string, std::string>> settings;
  std::string command_name;  // "list", "audit" ...
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;  // Command flags.
};

// Parses `args` (argv without the program name). Flags may come before or
// after the command, as --name=value, --name value, -x value, or --name for
// booleans; "--" ends the flags. Dashes and underscores in flag names are
// alike. INVALID_ARGUMENT for an unknown command, an unknown flag or one the
// command does not take, a missing value, or a repeated flag that is not
// repeatable. An unknown command with --help is still an error.
absl::Status ParseCommandLine(const std::vector<std::string>& args,
                              CommandLine* out);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_ARGS_H_
