#ifndef DSAR_TOOLS_DSARCTL_COMMANDS_H_
#define DSAR_TOOLS_DSARCTL_COMMANDS_H_

// The table of dsarctl's commands. It is the one source of the command-line
// grammar: the argument parser, every --help text and the bash completion
// script are all read from it.

#include <string>
#include <vector>

#include "tools/dsarctl/cli.h"

namespace dsarctl {

struct FlagSpec {
  std::string name;        // Canonical, with dashes: "page-size".
  std::string value_name;  // Empty for a boolean flag ("--all").
  std::string help;
  char short_name = 0;  // 'o' for -o; 0 for none.
  bool repeated = false;
  // Words the completion script offers for the value ("json yaml table").
  std::string completions;
};

struct CommandSpec {
  std::string name;  // "list", or "audit verify" for a subcommand.
  std::string args;  // Positional arguments for the synopsis: "<id>".
  std::string summary;
  std::string description;  // Longer text for --help; may be empty.
  std::vector<std::string> examples;
  std::vector<FlagSpec> flags;  // The command's own flags.
  int (*run)(const Options& options) = nullptr;
};

// Every command, in the order `dsarctl --help` lists them.
const std::vector<CommandSpec>& AllCommands();
// Flags every command accepts (connection, output, help).
const std::vector<FlagSpec>& GlobalFlags();
// The command named `name` ("get", "audit events"), or nullptr.
const CommandSpec* FindCommand(const std::string& name);

// Help texts, printed to stdout.
void PrintMainHelp();
void PrintCommandHelp(const CommandSpec& command);

// Command groups, one file each.
int RunLs(const Options& options);               // generic_commands.cc
int RunDescribe(const Options& options);         // generic_commands.cc
int RunCall(const Options& options);             // generic_commands.cc
int RunSubmit(const Options& options);           // request_commands.cc
int RunGet(const Options& options);              // request_commands.cc
int RunList(const Options& options);             // request_commands.cc
int RunWatch(const Options& options);            // request_commands.cc
int RunEvents(const Options& options);           // request_commands.cc
int RunCancel(const Options& options);           // request_commands.cc
int RunRetry(const Options& options);            // request_commands.cc
int RunExtend(const Options& options);           // request_commands.cc
int RunVerify(const Options& options);           // request_commands.cc
int RunPause(const Options& options);            // request_commands.cc
int RunResume(const Options& options);           // request_commands.cc
int RunWorkers(const Options& options);          // workers_command.cc
int RunDownload(const Options& options);         // delivery_commands.cc
int RunRevokeDownloads(const Options& options);  // delivery_commands.cc
int RunPurge(const Options& options);            // retention_commands.cc
int RunKeysRotate(const Options& options);       // retention_commands.cc
int RunAuditScanRun(const Options& options);     // audit_scan_commands.cc
int RunAuditScanReport(const Options& options);  // audit_scan_commands.cc
int RunWorkList(const Options& options);         // work_item_commands.cc
int RunWorkComplete(const Options& options);     // work_item_commands.cc
int RunWorkFail(const Options& options);         // work_item_commands.cc
int RunInventoryImport(const Options& options);  // inventory_commands.cc
int RunInventoryCheck(const Options& options);   // inventory_commands.cc
int RunAudit(const Options& options);            // audit.cc
int RunCompletion(const Options& options);       // completion.cc
int RunHelp(const Options& options);             // command_table.cc

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_COMMANDS_H_
