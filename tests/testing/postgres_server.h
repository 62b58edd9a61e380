#ifndef DSAR_TESTS_TESTING_POSTGRES_SERVER_H_
#define DSAR_TESTS_TESTING_POSTGRES_SERVER_H_

// A throw-away PostgreSQL server for tests: Debian's initdb makes a cluster
// in a fresh temporary directory, and postgres serves it on a free loopback
// port (TCP, with TLS) and on a socket directory of its own. Start()
// returns once the server accepts connections (polled with PQping); the
// destructor stops it (fast shutdown) and removes the directory. A test
// process that dies without its destructor (a CTest timeout) still stops
// the server (PR_SET_PDEATHSIG), leaving only the directory behind.
//
// Logins: the cluster's superuser `kSuperuser` connects without a password
// over the socket (setup and inspection by the test), and every role with
// a password over TCP (scram-sha-256). The role `tls_worker`, should a test
// create it, is refused over TCP without TLS (pg_hba hostnossl ... reject).
//
// PostgreSQL refuses to run as root. When the test runs as root, initdb and
// postgres run as the system user `postgres` (Debian's postgresql-common
// creates it), to whom the directory is given; the test itself stays root.

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace dsar::testing {

class PostgresServer {
 public:
  static constexpr char kSuperuser[] = "dsar_admin";

  // FAILED_PRECONDITION when PostgreSQL's programs are not installed
  // (tools/install-deps installs them), or running as root without a
  // `postgres` user; INTERNAL with the server's log when it does not start.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // The directory holding the server's Unix socket.
  const std::string& socket_dir() const { return socket_dir_; }
  // A directory the test may write files to (password files ...).
  const std::string& scratch_dir() const { return scratch_dir_; }
  // The CA certificate that signed the server's TLS certificate (for
  // sslrootcert; the certificate names localhost and 127.0.0.1).
  const std::string& ca_file() const { return ca_file_; }

  // Runs `sql` (one or more statements) as the superuser in `dbname`;
  // INTERNAL with the server's message on failure.
  absl::Status Exec(const std::string& sql,
                    const std::string& dbname = "postgres") const;
  // The first column of the first row of `sql`'s result, as text ("NULL"
  // for NULL); INTERNAL on failure or an empty result.
  absl::StatusOr<std::string> Query(
      const std::string& sql, const std::string& dbname = "postgres") const;

  // A libpq connection string for the superuser over the socket.
  std::string SuperuserConninfo(const std::string& dbname) const;

 private:
  PostgresServer() = default;

  std::string dir_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string scratch_dir_;
  std::string ca_file_;
  std::string log_file_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace dsar::testing

#endif  // DSAR_TESTS_TESTING_POSTGRES_SERVER_H_
