// skirmish::auth JWT: verifying the identity token a player logs in with
// (RFC 7519, in the JWS compact serialization of RFC 7515), signed by an
// identity service the operator trusts, HS256 or RS256.
//
// Contract
//   - verify() returns None only for a token whose signature checks with a
//     configured key and whose claims pass every rule below; then *out holds
//     the account (`sub`) and the expiry. It never throws, never crashes, on
//     any input, and leaves nothing in OpenSSL's error queue.
//   - The rules follow RFC 8725 (JWT Best Current Practices):
//       * The length is checked first (TooLong above max_token_bytes), so
//         nothing is decoded or parsed for an oversized token.
//       * Exactly three parts, each strict base64url without padding
//         (base64url.h); header and payload are JSON objects. Duplicate
//         member names: the last one wins (RFC 7515 section 5.2 allows it).
//       * The header's `alg` chooses among the configured algorithms only:
//         "HS256" needs hs256_secret, "RS256" needs rs256_public_key_pem;
//         "none", any other value, or an algorithm without its key is
//         UnsupportedAlg. So an RS256 public key can never be used as an
//         HS256 secret (the algorithm-confusion attack): the two keys are
//         configured separately and a key is only ever used with its
//         algorithm. A `crit` header is UnsupportedAlg (we implement no
//         extension). `typ`, if present, must be "JWT" in any case, else
//         Malformed. `kid`, `jku`, `jwk`, `x5u`, `x5c` are ignored: keys
//         come from the configuration only, never from the token.
//       * The signature is checked over the token's own text before the
//         payload is decoded. HS256: HMAC-SHA256, compared in constant time.
//         RS256: RSASSA-PKCS1-v1_5 with SHA-256.
//       * `exp` is required, a JSON number (integer or not); the token is
//         Expired when now > exp + leeway. `nbf` and `iat` are optional
//         numbers; NotYetValid when now + leeway < nbf, or when iat lies
//         more than leeway in the future. A non-number there is Malformed.
//       * `iss` must equal cfg.issuer (a missing or non-string iss fails);
//         `aud` must equal cfg.audience or, as an array, contain it. Either
//         is skipped when its setting is empty.
//       * `sub` is required: a string of 1..kMaxAccountBytes bytes, each
//         0x21..0x7E (printable ASCII, no space), else BadSubject. That is
//         the account everything else in the server keys on.
//     The first failing check is the error returned, in the order above,
//     except that every time claim is type-checked (Malformed) before any
//     is compared with now.
//   - No clock: the caller passes the time. No I/O, no logging.
//   - A JwtVerifier is immutable once created: verify() is const and may be
//     called from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace skirmish::auth {

inline constexpr size_t kMaxAccountBytes = 64;  // a verified `sub`: 1..64 bytes, each 0x21..0x7E

struct JwtConfig {
  std::string issuer;                // "iss" must equal it; empty = not checked
  std::string audience;              // must equal "aud" (a string) or be one of it (an array); empty = not checked
  std::string hs256_secret;          // raw bytes; empty = HS256 tokens refused
  std::string rs256_public_key_pem;  // PEM (SubjectPublicKeyInfo "BEGIN PUBLIC KEY"); empty = RS256 refused
  uint32_t leeway_s = 30;            // clock skew allowed on exp/nbf/iat
  uint32_t max_token_bytes = 4096;
};

enum class JwtError : uint8_t {
  None,
  TooLong,
  Malformed,
  UnsupportedAlg,
  BadSignature,
  Expired,
  NotYetValid,
  WrongIssuer,
  WrongAudience,
  BadSubject,
};

// Short English, e.g. "token expired"; never nullptr.
const char* to_string(JwtError e);

struct JwtClaims {
  std::string sub;
  int64_t exp = 0;  // unix seconds (a fractional exp rounded down)
};

class JwtVerifier {
 public:
  // nullptr and *err set (one line, e.g. "rs256_public_key: not a PEM public
  // key") on a bad config: neither key set, an unparsable PEM, a non-RSA key
  // or RSA under 2048 bits. err may be nullptr.
  static std::unique_ptr<JwtVerifier> create(const JwtConfig& cfg, std::string* err);

  // Verifies `token` at `now_s` (unix seconds). *out (may be nullptr) is
  // written only on None. Thread-safe.
  JwtError verify(std::string_view token, int64_t now_s, JwtClaims* out) const;

  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

 private:
  struct Impl;
  explicit JwtVerifier(std::unique_ptr<Impl> impl);
  JwtError verify_unguarded(std::string_view token, int64_t now_s, JwtClaims* out) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skirmish::auth
