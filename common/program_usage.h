#ifndef DSAR_COMMON_PROGRAM_USAGE_H_
#define DSAR_COMMON_PROGRAM_USAGE_H_

#include "absl/strings/string_view.h"

namespace dsar {

// Sets the usage message that --help prints and makes --help, --helpshort
// and --helppackage list the flags defined in `main_file` (pass __FILE__ from
// the file with main() and the ABSL_FLAGs). Abseil's default lists only flags
// from a file named after the program (dsar-worker.cc, dsar-worker_main.cc),
// so a program built from e.g. worker_main.cc would print "No flags matched".
// Call before absl::ParseCommandLine, once per process.
void SetProgramUsage(absl::string_view usage, absl::string_view main_file);

}  // namespace dsar

#endif  // DSAR_COMMON_PROGRAM_USAGE_H_
