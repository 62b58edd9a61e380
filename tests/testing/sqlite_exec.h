#ifndef DSAR_TESTS_TESTING_SQLITE_EXEC_H_
#define DSAR_TESTS_TESTING_SQLITE_EXEC_H_

// Test-only: runs SQL on a SQLite file, as a test sets up or changes a
// store behind the engine's back.

#include <string>

namespace dsar::testing {

// Opens (creating when missing) the SQLite file `path` and runs the
// statements `sql`; a failure is a test failure naming the file and SQLite's
// message.
void ExecSqlite(const std::string& path, const std::string& sql);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_TESTING_SQLITE_EXEC_H_
