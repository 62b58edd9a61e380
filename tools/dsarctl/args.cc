#include "tools/dsarctl/args.h"

#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace dsarctl {
namespace {

std::string Canonical(const std::string& name) {
  return absl::StrReplaceAll(name, {{"_", "-"}});
}

// Every flag name any command knows, to tell a boolean from one with a
// value before the command is known (the table keeps each name's kind the
// same everywhere).
const FlagSpec* FindAnyFlag(const std::string& name) {
  for (const FlagSpec& flag : GlobalFlags()) {
    if (Canonical(flag.name) == name) return &flag;
  }
  for (const CommandSpec& command : AllCommands()) {
    for (const FlagSpec& flag : command.flags) {
      if (Canonical(flag.name) == name) return &flag;
    }
  }
  return nullptr;
}

const FlagSpec* FindShortFlag(char short_name) {
  for (const FlagSpec& flag : GlobalFlags()) {
    if (flag.short_name == short_name) return &flag;
  }
  for (const CommandSpec& command : AllCommands()) {
    for (const FlagSpec& flag : command.flags) {
      if (flag.short_name == short_name) return &flag;
    }
  }
  return nullptr;
}

bool IsGlobal(const std::string& name) {
  for (const FlagSpec& flag : GlobalFlags()) {
    if (Canonical(flag.name) == name) return true;
  }
  return false;
}

const FlagSpec* CommandFlag(const CommandSpec& command,
                            const std::string& name) {
  for (const FlagSpec& flag : command.flags) {
    if (Canonical(flag.name) == name) return &flag;
  }
  return nullptr;
}

}  // namespace

absl::Status ParseCommandLine(const std::vector<std::string>& args,
                              CommandLine* out) {
  std::vector<std::string> words;
  std::vector<std::pair<std::string, std::string>> given;  // Canonical names.
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended || arg == "-" || arg.size() < 2 || arg[0] != '-') {
      words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    const FlagSpec* flag = nullptr;
    std::string shown;  // As typed, for messages.
    std::optional<std::string> value;
    if (arg[1] == '-') {
      std::string name = arg.substr(2);
      size_t equals = name.find('=');
      if (equals != std::string::npos) {
        value = name.substr(equals + 1);
        name = name.substr(0, equals);
      }
      shown = absl::StrCat("--", name);
      flag = FindAnyFlag(Canonical(name));
    } else {
      shown = arg.substr(0, 2);
      flag = FindShortFlag(arg[1]);
      if (arg.size() > 2) {
        value = arg.substr(arg[2] == '=' ? 3 : 2);
        if (flag != nullptr && flag->value_name.empty()) {
          return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
        }
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", shown));
    }
    if (flag->value_name.empty()) {
      if (!value) value = "true";
    } else if (!value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(shown, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    given.emplace_back(Canonical(flag->name), *value);
  }

  // The command: one word, or two for a group such as "audit verify".
  size_t used = 0;
  if (!words.empty()) {
    out->command_name = words[0];
    used = 1;
    if (words.size() > 1) {
      if (const CommandSpec* sub =
              FindCommand(absl::StrCat(words[0], " ", words[1]))) {
        out->command = sub;
      }
    }
    if (out->command == nullptr) out->command = FindCommand(words[0]);
    if (out->command == nullptr) {
      bool is_group = false;
      for (const CommandSpec& command : AllCommands()) {
        is_group |= absl::StartsWith(command.name, absl::StrCat(words[0], " "));
      }
      if (!is_group) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown command \"", words[0], "\""));
      }
    }
  }
  out->positional.assign(words.begin() + used, words.end());

  for (const auto& [name, value] : given) {
    if (name == "help") {
      out->help = true;
    } else if (name == "config") {
      out->config_path = value;
    } else if (IsGlobal(name)) {
      out->settings.emplace_back(name, value);
    } else {
      const FlagSpec* flag =
          out->command ? CommandFlag(*out->command, name) : nullptr;
      if (flag == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", name, " is not a flag of ",
            out->command ? absl::StrCat("\"", out->command->name, "\"")
                         : std::string("dsarctl without a command")));
      }
      if (!flag->repeated && out->flags.count(name) > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " is given more than once"));
      }
      out->flags.emplace(name, value);
    }
  }
  return absl::OkStatus();
}

}  // namespace dsarctl
