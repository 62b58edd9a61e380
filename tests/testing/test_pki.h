#ifndef DSAR_TESTS_TESTING_TEST_PKI_H_
#define DSAR_TESTS_TESTING_TEST_PKI_H_

// A throwaway certificate authority for tests: EC P-256 keys, certificates
// with the subject alternative names a test asks for, written as PEM files
// into a directory the test owns.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar::testing {

struct IssuedCertificate {
  std::string cert_pem;
  std::string key_pem;
  std::string cert_file;  // PEM files in the PKI's directory.
  std::string key_file;
};

class TestPki {
 public:
  // Makes a CA named `name` and writes `dir`/`name`-ca.pem.
  static absl::StatusOr<TestPki> Create(const std::string& dir,
                                        const std::string& name = "test");

  // Issues a leaf certificate signed by this CA, valid for a day, whose SAN
  // holds `dns_names` and the IP 127.0.0.1; files `dir`/`file_stem`.pem/.key.
  absl::StatusOr<IssuedCertificate> Issue(
      const std::string& file_stem, const std::vector<std::string>& dns_names);

  const std::string& ca_file() const { return ca_file_; }
  const std::string& ca_pem() const { return ca_pem_; }

 private:
  std::string dir_;
  std::string ca_file_;
  std::string ca_pem_;
  std::string ca_key_pem_;
};

}  // namespace dsar::testing

#endif  // DSAR_TESTS_TESTING_TEST_PKI_H_
