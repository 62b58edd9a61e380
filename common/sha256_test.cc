#include "common/sha256.h"

#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

std::string ConcatHex(std::initializer_list<std::string_view> parts) {
  unsigned char digest[kSha256Size];
  Sha256Concat(parts, digest);
  return absl::BytesToHexString(
      std::string(reinterpret_cast<const char*>(digest), kSha256Size));
}

TEST(Sha256ConcatTest, HashesTheConcatenationOfItsParts) {
  // FIPS 180-2 "abc" and the empty string.
  const std::string abc =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(ConcatHex({"abc"}), abc);
  EXPECT_EQ(ConcatHex({"a", "", "bc"}), abc);
  EXPECT_EQ(ConcatHex({}), Sha256Hex(""));
  // The per-thread context carries nothing from one hash to the next.
  EXPECT_EQ(ConcatHex({std::string(1000, 'x')}),
            Sha256Hex(std::string(1000, 'x')));
  EXPECT_EQ(ConcatHex({"ab", "c"}), abc);
}

TEST(Sha256ConcatTest, EachThreadHasItsOwnContext) {
  std::string other;
  std::thread thread([&] { other = ConcatHex({"a", "bc"}); });
  std::string here = ConcatHex({"abc"});
  thread.join();
  EXPECT_EQ(other, here);
}

}  // namespace
}  // namespace dsar
