// dsarctl: the operator's command-line client for dsard, and a grpc_cli
// for any gRPC server with reflection. `dsarctl --help` lists the commands;
// command_table.cc holds their grammar and help.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mutex_mode.h"
#include "tools/dsarctl/args.h"
#include "tools/dsarctl/cli.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/config.h"

namespace dsarctl {
namespace {

// The command being run, for the pointer to its --help in Usage().
const CommandSpec* usage_command = nullptr;

// Names of the subcommands of a group ("audit"), for a usage message.
std::string SubcommandsOf(const std::string& group) {
  std::vector<std::string> names;
  for (const CommandSpec& command : AllCommands()) {
    if (command.name.rfind(group + " ", 0) == 0) {
      names.push_back(command.name.substr(group.size() + 1));
    }
  }
  return absl::StrJoin(names, ", ");
}

int Run(int argc, char** argv) {
  CommandLine line;
  absl::Status parsed =
      ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc), &line);
  if (!parsed.ok()) return Usage(std::string(parsed.message()));
  usage_command = line.command;
  if (line.command == nullptr) {
    if (line.command_name.empty()) {
      if (line.help) {
        PrintMainHelp();
        return kExitOk;
      }
      return Usage("a command is required");
    }
    const std::string& group = line.command_name;
    return Usage(line.positional.empty()
                     ? absl::StrCat(group, ": a subcommand is required (",
                                    SubcommandsOf(group), ")")
                     : absl::StrCat(group, ": unknown subcommand \"",
                                    line.positional[0], "\" (",
                                    SubcommandsOf(group), ")"));
  }
  if (line.help) {
    PrintCommandHelp(*line.command);
    return kExitOk;
  }

  Options options;
  bool required = false;
  const std::string config = ConfigPath(line.config_path, &required);
  if (absl::Status status = ApplyConfigFile(config, required, &options);
      !status.ok()) {
    return Usage(std::string(status.message()));
  }
  if (const char* addr = std::getenv("DSAR_ADDR"); addr && *addr) {
    options.addr = addr;
  }
  for (const auto& [name, value] : line.settings) {
    if (absl::Status status = ApplySetting(name, value, &options);
        !status.ok()) {
      return Usage(absl::StrCat("--", status.message()));
    }
  }
  if (absl::Status status = CheckConnectionSettings(options); !status.ok()) {
    return Usage(std::string(status.message()));
  }
  options.stdout_is_tty = isatty(STDOUT_FILENO) == 1;
  const char* no_color = std::getenv("NO_COLOR");
  options.color = options.stdout_is_tty && (no_color == nullptr || !*no_color);
  options.command = line.command_name;
  options.positional = std::move(line.positional);
  options.flags = std::move(line.flags);
  return line.command->run(options);
}

}  // namespace

int Usage(const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "dsarctl: %s\n", message.c_str());
  std::fprintf(
      stderr, "Run 'dsarctl %s--help' for usage.\n",
      usage_command ? absl::StrCat(usage_command->name, " ").c_str() : "");
  return kExitUsage;
}

}  // namespace dsarctl

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  return dsarctl::Run(argc, argv);
}
