#ifndef DSAR_TOOLS_DSARCTL_CLI_H_
#define DSAR_TOOLS_DSARCTL_CLI_H_

// Shared pieces of dsarctl's commands: parsed options, exit codes and the
// error report for a failed call.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dsarctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // Server error or failed verification.
inline constexpr int kExitUsage = 2;  // Bad flags, arguments or input.
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitUnavailable = 4;  // Unreachable or timed out.

// Everything a command needs: the connection settings (defaults, then the
// config file, then the environment, then flags), the output format and the
// command's own words and flags.
struct Options {
  // Connection.
  std::string addr = "127.0.0.1:50051";
  bool tls = false;
  std::string ca_cert;      // PEM file; implies tls.
  std::string client_cert;  // PEM file; needs client_key; implies tls.
  std::string client_key;
  double timeout_seconds = 30;                               // Per call.
  std::vector<std::pair<std::string, std::string>> headers;  // Metadata.

  std::string output = "table";  // "table", "json" or "yaml".
  bool color = false;            // stdout is a terminal and NO_COLOR is unset.
  bool stdout_is_tty = false;
  std::string pubkey;  // Checkpoint public key (config "pubkey", --pubkey).

  // The command: e.g. "list", or "audit" with positional[0] = "events".
  std::string command;
  std::vector<std::string> positional;
  // Command flags by canonical name ("page-size"); repeated flags repeat.
  std::multimap<std::string, std::string> flags;

  // The value of --name, or `fallback` when absent.
  std::string Flag(const std::string& name,
                   const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  // Every value of a repeated --name, in command-line order.
  std::vector<std::string> Flags(const std::string& name) const {
    std::vector<std::string> values;
    auto [begin, end] = flags.equal_range(name);
    for (auto it = begin; it != end; ++it) values.push_back(it->second);
    return values;
  }
  bool Has(const std::string& name) const { return flags.count(name) > 0; }

  // Sets the --timeout deadline and the --header metadata on `context`.
  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(
                              static_cast<int64_t>(timeout_seconds * 1000)));
    for (const auto& [key, value] : headers) context->AddMetadata(key, value);
  }
};

// The channel every command uses: TLS (with a client certificate when one
// is configured) or plaintext to options.addr. Never null. The certificate
// files must have been checked with CheckConnectionSettings (config.h);
// connection errors show up as the first call's status (UNAVAILABLE).
std::shared_ptr<grpc::Channel> OpenChannel(const Options& options);

// Prints `message` and a pointer to the command's --help; returns
// kExitUsage.
int Usage(const std::string& message);
// Prints the call's error; returns the exit code for its status: NOT_FOUND
// 3, UNAVAILABLE and DEADLINE_EXCEEDED 4, INVALID_ARGUMENT 2, others 1.
int ExitFor(const grpc::Status& status);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_CLI_H_
