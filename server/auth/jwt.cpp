// The JWT verifier; the contract and the rules are in jwt.h.
#include "auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>

#include "auth/base64url.h"

namespace skirmish::auth {

using nlohmann::json;

namespace {

constexpr int kMinRsaBits = 2048;
constexpr size_t kHs256Bytes = 32;
// Times are clamped to +-2^62 so that adding a leeway never overflows.
constexpr int64_t kTimeLimit = int64_t{1} << 62;

enum class Alg { Hs256, Rs256 };

// A JSON object parsed from base64url text; discarded (not an object) on
// any failure. The non-throwing parse: an error is a value, not an exception.
json decode_object(std::string_view b64) {
  std::string bytes;
  if (!base64url_decode(b64, &bytes)) return json(json::value_t::discarded);
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return json(json::value_t::discarded);
  return j;
}

// A JSON number as whole seconds: rounded down, clamped to +-kTimeLimit.
// False when `v` is not a finite number.
bool to_seconds(const json& v, int64_t* s) {
  if (v.is_number_unsigned()) {
    *s = static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), kTimeLimit));
  } else if (v.is_number_integer()) {
    *s = std::clamp<int64_t>(v.get<int64_t>(), -kTimeLimit, kTimeLimit);
  } else if (v.is_number_float()) {
    const double d = std::floor(v.get<double>());
    if (!std::isfinite(d)) return false;
    const double limit = static_cast<double>(kTimeLimit);
    *s = d >= limit ? kTimeLimit : d <= -limit ? -kTimeLimit : static_cast<int64_t>(d);
  } else {
    return false;
  }
  return true;
}

// An optional time claim: absent is fine (*present = false), a non-number not.
bool optional_seconds(const json& payload, const char* name, int64_t* s, bool* present) {
  const auto it = payload.find(name);
  *present = it != payload.end();
  return !*present || to_seconds(*it, s);
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool good_subject(const std::string& sub) {
  if (sub.empty() || sub.size() > kMaxAccountBytes) return false;
  return std::all_of(sub.begin(), sub.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

}  // namespace

const char* to_string(JwtError e) {
  switch (e) {
    case JwtError::None: return "ok";
    case JwtError::TooLong: return "token too long";
    case JwtError::Malformed: return "malformed token";
    case JwtError::UnsupportedAlg: return "unsupported algorithm";
    case JwtError::BadSignature: return "bad signature";
    case JwtError::Expired: return "token expired";
    case JwtError::NotYetValid: return "token not yet valid";
    case JwtError::WrongIssuer: return "wrong issuer";
    case JwtError::WrongAudience: return "wrong audience";
    case JwtError::BadSubject: return "bad subject";
  }
  return "unknown error";
}

struct JwtVerifier::Impl {
  JwtConfig cfg;
  EVP_PKEY* rsa = nullptr;  // only read after create(): safe to share between threads
  ~Impl() { EVP_PKEY_free(rsa); }
};

JwtVerifier::JwtVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtVerifier::~JwtVerifier() = default;

std::unique_ptr<JwtVerifier> JwtVerifier::create(const JwtConfig& cfg, std::string* err) {
  std::string scratch;
  if (err == nullptr) err = &scratch;
  if (cfg.hs256_secret.empty() && cfg.rs256_public_key_pem.empty()) {
    *err = "jwt: neither hs256_secret nor rs256_public_key is set";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->cfg.rs256_public_key_pem.clear();  // the parsed key is what is kept
  if (!cfg.rs256_public_key_pem.empty()) {
    const std::string& pem = cfg.rs256_public_key_pem;
    ERR_set_mark();
    EVP_PKEY* key = nullptr;
    if (pem.size() <= INT_MAX) {
      BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      if (bio != nullptr) key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
    }
    ERR_pop_to_mark();
    impl->rsa = key;  // freed by ~Impl on every path below
    if (key == nullptr) {
      *err = "rs256_public_key: not a PEM public key";
      return nullptr;
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
      *err = "rs256_public_key: not an RSA key";
      return nullptr;
    }
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kMinRsaBits) {
      *err = "rs256_public_key: an RSA key of " + std::to_string(bits) + " bits, at least 2048 required";
      return nullptr;
    }
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(impl)));
}

JwtError JwtVerifier::verify(std::string_view token, int64_t now_s, JwtClaims* out) const {
  ERR_set_mark();
  JwtError e = JwtError::Malformed;
  try {
    e = verify_unguarded(token, now_s, out);
  } catch (...) {  // std::bad_alloc; nlohmann is used without exceptions
    e = JwtError::Malformed;
  }
  ERR_pop_to_mark();  // whatever OpenSSL queued while failing a signature
  return e;
}

JwtError JwtVerifier::verify_unguarded(std::string_view token, int64_t now_s, JwtClaims* out) const {
  const JwtConfig& cfg = impl_->cfg;
  if (token.size() > cfg.max_token_bytes) return JwtError::TooLong;

  // header.payload.signature, exactly.
  const size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return JwtError::Malformed;
  const size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) return JwtError::Malformed;
  const std::string_view signed_text = token.substr(0, d2);
  const std::string_view payload_b64 = token.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view sig_b64 = token.substr(d2 + 1);

  // The header: which configured algorithm, and nothing we do not implement.
  const json header = decode_object(token.substr(0, d1));
  if (header.is_discarded()) return JwtError::Malformed;
  const auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return JwtError::Malformed;
  if (header.contains("crit")) return JwtError::UnsupportedAlg;
  if (const auto typ = header.find("typ"); typ != header.end()) {
    if (!typ->is_string() || !equals_ignore_case(typ->get_ref<const std::string&>(), "JWT")) return JwtError::Malformed;
  }
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  Alg alg;
  if (alg_name == "HS256" && !cfg.hs256_secret.empty()) {
    alg = Alg::Hs256;
  } else if (alg_name == "RS256" && impl_->rsa != nullptr) {
    alg = Alg::Rs256;
  } else {
    return JwtError::UnsupportedAlg;
  }

  // The signature, over the token's own text, before the payload is read.
  std::string sig;
  if (!base64url_decode(sig_b64, &sig)) return JwtError::Malformed;
  const auto* data = reinterpret_cast<const unsigned char*>(signed_text.data());
  const auto* sig_bytes = reinterpret_cast<const unsigned char*>(sig.data());
  if (alg == Alg::Hs256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), cfg.hs256_secret.data(), static_cast<int>(cfg.hs256_secret.size()), data,
             signed_text.size(), mac, &mac_len) == nullptr ||
        mac_len != kHs256Bytes || sig.size() != kHs256Bytes || CRYPTO_memcmp(mac, sig_bytes, kHs256Bytes) != 0) {
      return JwtError::BadSignature;
    }
  } else {
    if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(impl_->rsa))) return JwtError::BadSignature;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, impl_->rsa) == 1 &&
                    EVP_DigestVerify(ctx, sig_bytes, sig.size(), data, signed_text.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return JwtError::BadSignature;
  }

  // The claims.
  const json payload = decode_object(payload_b64);
  if (payload.is_discarded()) return JwtError::Malformed;
  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_exp = false, has_nbf = false, has_iat = false;
  if (!optional_seconds(payload, "exp", &exp, &has_exp) || !has_exp) return JwtError::Malformed;
  if (!optional_seconds(payload, "nbf", &nbf, &has_nbf)) return JwtError::Malformed;
  if (!optional_seconds(payload, "iat", &iat, &has_iat)) return JwtError::Malformed;

  const int64_t now = std::clamp(now_s, -kTimeLimit, kTimeLimit);
  const int64_t leeway = cfg.leeway_s;
  if (now > exp + leeway) return JwtError::Expired;
  if (has_nbf && now + leeway < nbf) return JwtError::NotYetValid;
  if (has_iat && now + leeway < iat) return JwtError::NotYetValid;

  if (!cfg.issuer.empty()) {
    const auto iss = payload.find("iss");
    if (iss == payload.end() || !iss->is_string() || iss->get_ref<const std::string&>() != cfg.issuer) {
      return JwtError::WrongIssuer;
    }
  }
  if (!cfg.audience.empty()) {
    const auto aud = payload.find("aud");
    bool found = false;
    if (aud != payload.end() && aud->is_string()) {
      found = aud->get_ref<const std::string&>() == cfg.audience;
    } else if (aud != payload.end() && aud->is_array()) {
      found = std::any_of(aud->begin(), aud->end(), [&](const json& a) {
        return a.is_string() && a.get_ref<const std::string&>() == cfg.audience;
      });
    }
    if (!found) return JwtError::WrongAudience;
  }

  const auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string() || !good_subject(sub->get_ref<const std::string&>())) {
    return JwtError::BadSubject;
  }
  if (out != nullptr) {
    out->sub = sub->get_ref<const std::string&>();
    out->exp = exp;
  }
  return JwtError::None;
}

}  // namespace skirmish::auth
