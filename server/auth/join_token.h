// skirmish::auth join tokens: the fleet's proof that a player may join a
// match on another instance. When a player is redirected to another
// instance, the instance that sends them signs a token with the fleet's
// shared secret; the receiving instance verifies it with the same secret
// and knows, without a round trip, who the player is and which match it is.
//
// Contract
//   - A token is the base64url (base64url.h, strict, no padding) of:
//       u8  version (1)
//       u64 match id, little endian
//       i64 expiry, unix milliseconds, little endian
//       u8  account length, then the account's bytes (at most kMaxAccountBytes)
//       u8  instance length, then the instance id's bytes (at most
//           kMaxJoinInstanceBytes)
//       32 bytes: HMAC-SHA256 with the fleet secret over a fixed label
//           ("skirmish-join\0") and then every byte above.
//     So it is printable ASCII, at most 239 characters, and every field is
//     covered by the MAC; the label keeps the MAC from meaning anything in
//     another protocol that might share the secret.
//   - verify_join_token() returns None only when the MAC checks (compared
//     in constant time) and now_ms < expires_ms; then *out holds the
//     claims. A token longer than kMaxJoinTokenBytes is refused before it
//     is decoded. Decoding is strict and the layout must be exact (no
//     trailing bytes), so a token has exactly one valid spelling: changing
//     any character makes it Malformed or BadSignature, never None.
//   - An empty secret signs nothing (sign returns "") and verifies nothing
//     (BadSignature): a fleet without a secret has no join tokens.
//   - NOT checked here, the caller's job: that the token is for the match
//     the player asks to join, that it names this instance, and that it has
//     not been used already (replay within its lifetime). Keep lifetimes
//     short (seconds).
//   - Pure: no clock (the caller passes now_ms), no I/O, no logging, no
//     global state; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/jwt.h"  // kMaxAccountBytes

namespace skirmish::auth {

inline constexpr size_t kMaxJoinInstanceBytes = 64;
inline constexpr size_t kMaxJoinTokenBytes = 512;

struct JoinClaims {
  uint64_t match = 0;
  std::string account;
  int64_t expires_ms = 0;  // unix ms; the token is valid while now_ms < expires_ms
  std::string instance;
};

// The token for `c`: printable ASCII. Empty when the secret is empty, the
// account is longer than kMaxAccountBytes or the instance longer than
// kMaxJoinInstanceBytes.
std::string sign_join_token(std::string_view secret, const JoinClaims& c);

enum class JoinTokenError : uint8_t { None, Malformed, BadSignature, Expired };

// Short English, e.g. "join token expired"; never nullptr.
const char* to_string(JoinTokenError e);

// Checks `token` at now_ms (unix ms). *out (may be nullptr) is written only
// on None. Never throws (std::bad_alloc aside), never crashes on any input.
JoinTokenError verify_join_token(std::string_view secret, std::string_view token, int64_t now_ms, JoinClaims* out);

}  // namespace skirmish::auth
