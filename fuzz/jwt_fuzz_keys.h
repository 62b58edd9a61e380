#ifndef DSAR_FUZZ_JWT_FUZZ_KEYS_H_
#define DSAR_FUZZ_JWT_FUZZ_KEYS_H_

// The keys the JWT fuzz targets verify with: a JWKS holding the public
// halves of an RSA-2048 key ("rsa-1") and a P-256 key ("ec-1") made once for
// the seed tokens in fuzz/corpus/jwt (their private halves were thrown
// away), and an HS256 secret with which jwt_fuzzer signs inputs itself.
// Test keys, protecting nothing.

#include <cstdint>

namespace dsar::fuzz {

inline constexpr char kFuzzJwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":"
    "\"RS256\",\"n\":\"4"
    "UKS-6_rFajvx1g616YMboQ7qxMME6BrktX7cQTlQlDCSLQPWnwKLSWmVlvQ7E29RskfQ"
    "q7ig5m_wwxLuRDTz7E2w7mpBk-FTozg65z-8Et6bdntgTUoXTPjvr4bBR80_o93Xc7YW"
    "DP--5G8NLtknUqSkLTNwRbnyju7X58Xyq2TUaRmaI911781W2kR1v7KJvQWMYS5__SYB"
    "wwg7MImVfSiWhaWWdFioMzZBvWeHvPdYEd7bLlG1rCFKWfIh-G6w2v461UzY-SAQXyI4"
    "DaMCgjySxFaLfl8iulzdXZ3Dimna1txQqfaU_HKfADnx8TspVExCok733jgokqfg8mwA"
    "Q\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"ec-1\",\"use\":\"sig\","
    "\"alg\":\"ES256\",\"c"
    "rv\":\"P-256\",\"x\":\"PemnM1jaFt90EwqgeAxBwh5rbKgvMQpfjlcj_YemMwk\","
    "\"y\":\"V"
    "ZozZmzXIBwOEPclcMVHxeninmqk2g-rozh_iQ9qndg\"}]}";

inline constexpr char kFuzzHs256Secret[] =
    "dsar-fuzz-hs256-secret-0123456789abcdef";

// The verifier's clock (2024-06-01T00:00:00Z) and the claims it requires.
inline constexpr int64_t kFuzzNow = 1717200000;
inline constexpr char kFuzzIssuer[] = "https://issuer.test";
inline constexpr char kFuzzAudience[] = "dsar-gateway";

}  // namespace dsar::fuzz

#endif  // DSAR_FUZZ_JWT_FUZZ_KEYS_H_
