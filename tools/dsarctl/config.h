#ifndef DSAR_TOOLS_DSARCTL_CONFIG_H_
#define DSAR_TOOLS_DSARCTL_CONFIG_H_

// dsarctl's defaults: a config file of key=value lines, then the
// environment, then flags, each overriding the one before.
//
//   # ~/.config/dsarctl/config
//   addr = dsard.internal:50051
//   tls = true
//   ca_cert = /etc/dsar/ca.pem
//   pubkey = /etc/dsar/checkpoint.key.pub

#include <string>

#include "absl/status/status.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {

// Applies one setting named as in the config file or as a global flag
// (dashes and underscores alike): addr, tls, ca_cert, client_cert,
// client_key, timeout, output, pubkey, header. INVALID_ARGUMENT for an
// unknown name or a bad value, saying which.
absl::Status ApplySetting(const std::string& name, const std::string& value,
                          Options* options);

// The config file to read: `flag_path` (--config), else $DSARCTL_CONFIG,
// else $XDG_CONFIG_HOME/dsarctl/config, else ~/.config/dsarctl/config.
// `*required` is set when the file was named (by flag or environment), so
// that a missing one is an error rather than "no defaults".
std::string ConfigPath(const std::string& flag_path, bool* required);

// Applies every "key = value" line of the file at `path`; blank lines and
// lines starting with '#' are skipped. A missing file is OK unless
// `required`. Errors name the file and line.
absl::Status ApplyConfigFile(const std::string& path, bool required,
                             Options* options);

// Checks that the TLS files named by `options` can be read and that a
// client certificate comes with its key.
absl::Status CheckConnectionSettings(const Options& options);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_CONFIG_H_
