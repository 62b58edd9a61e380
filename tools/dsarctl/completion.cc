// `dsarctl completion bash`: a bash completion script generated from the
// command table, so it always knows the same commands and flags as the
// parser. Service, method and request-id arguments are completed by asking
// the server (with the connection flags already typed on the line).

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/dsarctl/commands.h"

namespace dsarctl {
namespace {

constexpr char kPrologue[] = R"SH(# bash completion for dsarctl. Load it with
#   source <(dsarctl completion bash)
# or save it as /etc/bash_completion.d/dsarctl.

_dsarctl_server() {
  # Runs dsarctl with the connection flags typed so far; quiet and quick.
  "${_dsarctl_bin}" "${_dsarctl_conn[@]}" --timeout=2 "$@" 2>/dev/null
}

_dsarctl() {
  local _dsarctl_bin="${COMP_WORDS[0]}"
  local line="${COMP_LINE:0:COMP_POINT}"
  local -a words
  read -ra words <<< "$line"
  local cur=""
  if [[ "$line" != *[[:space:]] && ${#words[@]} -gt 0 ]]; then
    cur="${words[${#words[@]}-1]}"
    unset 'words[${#words[@]}-1]'
  fi
  local -a _dsarctl_conn=()
  local cmd="" sub="" nargs=0 skip="" pending="" w i
)SH";

constexpr char kScan[] = R"SH(
  for ((i = 1; i < ${#words[@]}; i++)); do
    w="${words[i]}"
    if [[ -n "$skip" ]]; then
      [[ "$skip" == conn ]] && _dsarctl_conn+=("$w")
      skip=""
      continue
    fi
    if [[ "$w" == -* ]]; then
      case "${w%%=*}" in
        --addr|--tls|--ca_cert|--ca-cert|--client_cert|--client-cert|--client_key|--client-key|--config|--header)
          _dsarctl_conn+=("$w")
          [[ "$w" != *=* && " $value_flags " == *" ${w} "* ]] && skip=conn ;;
        *)
          [[ "$w" != *=* && " $value_flags " == *" ${w} "* ]] && skip=value ;;
      esac
      continue
    fi
    if [[ -z "$cmd" ]]; then
      cmd="$w"
    elif [[ " $groups " == *" $cmd "* && -z "$sub" ]]; then
      sub="$w"
    else
      nargs=$((nargs + 1))
    fi
  done
  # The value of a flag: "--flag=va" or "--flag va".
  local flag="" value="$cur"
  if [[ "$cur" == --*=* ]]; then
    flag="${cur%%=*}"
    value="${cur#*=}"
  elif [[ -n "$skip" ]]; then
    flag="${words[${#words[@]}-1]}"
  fi
  local key="$cmd"
  [[ -n "$sub" ]] && key="$cmd $sub"
  local candidates=""
  if [[ -n "$flag" ]]; then
    candidates="$(_dsarctl_values "$flag")"
    COMPREPLY=($(compgen -W "$candidates" -- "$value"))
    # Where '=' does not split words, the reply replaces "--flag=value".
    if [[ "$cur" == --*=* && "$COMP_WORDBREAKS" != *=* ]]; then
      COMPREPLY=("${COMPREPLY[@]/#/$flag=}")
    fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    candidates="$global_flags $(_dsarctl_flags "$key")"
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *= ]]; then
      compopt -o nospace 2>/dev/null
    fi
    return 0
  fi
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    return 0
  fi
  if [[ " $groups " == *" $cmd "* && -z "$sub" ]]; then
    COMPREPLY=($(compgen -W "$(_dsarctl_subcommands "$cmd")" -- "$cur"))
    return 0
  fi
  if [[ $nargs -eq 0 ]]; then
    case "$key" in
      ls|describe)
        candidates="$(_dsarctl_server ls)" ;;
      call)
        local s
        for s in $(_dsarctl_server ls); do
          candidates+=" $(_dsarctl_server ls "$s" | sed "s|^|$s/|")"
        done ;;
      get|watch|events|cancel|retry|download|revoke-downloads|"audit events")
        candidates="$(_dsarctl_server list --page-size=1000 | awk 'NR > 1 {print $1}')" ;;
      completion)
        candidates="bash" ;;
      help)
        candidates="$commands" ;;
    esac
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
  fi
  return 0
}
complete -o default -F _dsarctl dsarctl
)SH";

std::string Quote(const std::string& text) {
  return absl::StrCat("\"", text, "\"");
}

std::string FlagWords(const std::vector<FlagSpec>& flags) {
  std::vector<std::string> words;
  for (const FlagSpec& flag : flags) {
    words.push_back(
        absl::StrCat("--", flag.name, flag.value_name.empty() ? "" : "="));
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

int RunCompletion(const Options& options) {
  if (options.positional.size() != 1 || options.positional[0] != "bash") {
    return Usage("completion: only bash is supported: dsarctl completion bash");
  }
  std::vector<std::string> commands;
  std::set<std::string> groups;
  std::vector<const FlagSpec*> valued;  // Flags that take a value.
  for (const FlagSpec& flag : GlobalFlags()) valued.push_back(&flag);
  for (const CommandSpec& command : AllCommands()) {
    size_t space = command.name.find(' ');
    std::string top = command.name.substr(0, space);
    if (space != std::string::npos) groups.insert(top);
    if (commands.empty() || commands.back() != top) commands.push_back(top);
    for (const FlagSpec& flag : command.flags) valued.push_back(&flag);
  }

  std::string script = kPrologue;
  std::vector<std::string> value_flags;
  std::set<std::string> seen;
  for (const FlagSpec* flag : valued) {
    if (flag->value_name.empty() || !seen.insert(flag->name).second) continue;
    value_flags.push_back(absl::StrCat("--", flag->name));
    if (flag->short_name)
      value_flags.push_back(
          absl::StrCat("-", std::string(1, flag->short_name)));
  }
  absl::StrAppend(
      &script, "  local commands=", Quote(absl::StrJoin(commands, " ")), "\n",
      "  local groups=", Quote(absl::StrJoin(groups, " ")), "\n",
      "  local value_flags=", Quote(absl::StrJoin(value_flags, " ")), "\n",
      "  local global_flags=",
      Quote(absl::StrCat(FlagWords(GlobalFlags()), " -o -h")), "\n");
  absl::StrAppend(&script, kScan);

  // _dsarctl_flags KEY: the command's own flags.
  absl::StrAppend(&script, "\n_dsarctl_flags() {\n  case \"$1\" in\n");
  for (const CommandSpec& command : AllCommands()) {
    if (command.flags.empty()) continue;
    absl::StrAppend(&script, "    ", Quote(command.name), ") echo ",
                    Quote(FlagWords(command.flags)), " ;;\n");
  }
  absl::StrAppend(&script, "  esac\n}\n");

  // _dsarctl_values FLAG: the words a flag's value can be.
  absl::StrAppend(&script, "\n_dsarctl_values() {\n  case \"$1\" in\n");
  seen.clear();
  for (const FlagSpec* flag : valued) {
    if (flag->completions.empty() || !seen.insert(flag->name).second) continue;
    std::string pattern = absl::StrCat("--", flag->name);
    if (flag->short_name)
      absl::StrAppend(&pattern, "|-", std::string(1, flag->short_name));
    absl::StrAppend(&script, "    ", pattern, ") echo ",
                    Quote(flag->completions), " ;;\n");
  }
  absl::StrAppend(&script, "  esac\n}\n");

  // _dsarctl_subcommands GROUP.
  absl::StrAppend(&script, "\n_dsarctl_subcommands() {\n  case \"$1\" in\n");
  for (const std::string& group : groups) {
    std::vector<std::string> subs;
    for (const CommandSpec& command : AllCommands()) {
      if (command.name.rfind(group + " ", 0) == 0)
        subs.push_back(command.name.substr(group.size() + 1));
    }
    absl::StrAppend(&script, "    ", group, ") echo ",
                    Quote(absl::StrJoin(subs, " ")), " ;;\n");
  }
  absl::StrAppend(&script, "  esac\n}\n");
  std::fputs(script.c_str(), stdout);
  return kExitOk;
}

}  // namespace dsarctl
