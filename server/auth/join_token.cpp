// Join tokens; the layout and the contract are in join_token.h.
#include "auth/join_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>

#include "auth/base64url.h"

namespace skirmish::auth {

namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kMacBytes = 32;
constexpr std::string_view kLabel{"skirmish-join\0", 14};
// version, match, expiry, the two length bytes.
constexpr size_t kFixedBytes = 1 + 8 + 8 + 1 + 1;

void put_u64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; i++) *s += static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// HMAC-SHA256(secret, label || body) into mac. False on an OpenSSL failure.
bool mac_of(std::string_view secret, std::string_view body, unsigned char mac[kMacBytes]) {
  if (secret.size() > INT_MAX) return false;
  EVP_MAC* algo = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = algo != nullptr ? EVP_MAC_CTX_new(algo) : nullptr;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
                         OSSL_PARAM_construct_end()};
  size_t len = 0;
  const bool ok = ctx != nullptr &&
                  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), params) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size()) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1 &&
                  EVP_MAC_final(ctx, mac, &len, kMacBytes) == 1 && len == kMacBytes;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(algo);
  return ok;
}

}  // namespace

const char* to_string(JoinTokenError e) {
  switch (e) {
    case JoinTokenError::None: return "ok";
    case JoinTokenError::Malformed: return "malformed join token";
    case JoinTokenError::BadSignature: return "bad join token signature";
    case JoinTokenError::Expired: return "join token expired";
  }
  return "unknown error";
}

std::string sign_join_token(std::string_view secret, const JoinClaims& c) {
  if (secret.empty() || c.account.size() > kMaxAccountBytes || c.instance.size() > kMaxJoinInstanceBytes) return {};
  std::string body;
  body.reserve(kFixedBytes + c.account.size() + c.instance.size() + kMacBytes);
  body += static_cast<char>(kVersion);
  put_u64(&body, c.match);
  put_u64(&body, static_cast<uint64_t>(c.expires_ms));
  body += static_cast<char>(c.account.size());
  body += c.account;
  body += static_cast<char>(c.instance.size());
  body += c.instance;
  unsigned char mac[kMacBytes];
  if (!mac_of(secret, body, mac)) return {};
  body.append(reinterpret_cast<const char*>(mac), kMacBytes);
  return base64url_encode(body);
}

JoinTokenError verify_join_token(std::string_view secret, std::string_view token, int64_t now_ms, JoinClaims* out) {
  if (token.size() > kMaxJoinTokenBytes) return JoinTokenError::Malformed;
  std::string raw;
  if (!base64url_decode(token, &raw)) return JoinTokenError::Malformed;
  if (raw.size() < kFixedBytes + kMacBytes) return JoinTokenError::Malformed;
  const auto* p = reinterpret_cast<const uint8_t*>(raw.data());
  if (p[0] != kVersion) return JoinTokenError::Malformed;

  // The MAC first (in constant time), over everything before it.
  const std::string_view body(raw.data(), raw.size() - kMacBytes);
  unsigned char mac[kMacBytes];
  if (secret.empty() || !mac_of(secret, body, mac) || CRYPTO_memcmp(mac, p + body.size(), kMacBytes) != 0) {
    return JoinTokenError::BadSignature;
  }

  // Then the layout, exactly (only a buggy signer gets here with a bad one).
  size_t at = 1;
  const uint64_t match = get_u64(p + at);
  at += 8;
  const auto expires_ms = static_cast<int64_t>(get_u64(p + at));
  at += 8;
  const size_t account_len = p[at++];
  if (account_len > kMaxAccountBytes || at + account_len + 1 > body.size()) return JoinTokenError::Malformed;
  const std::string_view account = body.substr(at, account_len);
  at += account_len;
  const size_t instance_len = p[at++];
  if (instance_len > kMaxJoinInstanceBytes || at + instance_len != body.size()) return JoinTokenError::Malformed;
  const std::string_view instance = body.substr(at, instance_len);

  if (now_ms >= expires_ms) return JoinTokenError::Expired;
  if (out != nullptr) {
    out->match = match;
    out->account.assign(account);
    out->expires_ms = expires_ms;
    out->instance.assign(instance);
  }
  return JoinTokenError::None;
}

}  // namespace skirmish::auth
