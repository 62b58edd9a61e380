#include "common/listen_address.h"

#include "gtest/gtest.h"

namespace dsar {
namespace {

TEST(IsLoopbackAddressTest, OnlyThisMachine) {
  for (const char* address : {"127.0.0.1:50051", "127.1.2.3:0", "localhost:80",
                              "[::1]:50051", "unix:/run/dsard.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address :
       {"0.0.0.0:50051", "[::]:50051", ":50051", "10.0.0.5:50051",
        "127.0.0.1.example.com:1", "dsard.internal:50051", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

}  // namespace
}  // namespace dsar
