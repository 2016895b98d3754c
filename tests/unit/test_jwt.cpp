// Unit tests of server/auth: the JWT verifier (HS256, RS256 and the RFC 8725
// rules), the fleet's join tokens and the strict base64url under both. The
// tokens are built here with OpenSSL directly, not with the code under test.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "auth/base64url.h"
#include "auth/join_token.h"
#include "auth/jwt.h"

using namespace skirmish::auth;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef";
const std::string kIssuer = "https://id.example";
const std::string kAudience = "skirmish";

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Key rsa_key(size_t bits) { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }

// One RSA-2048 key for the whole run (generating one takes a while).
EVP_PKEY* rsa2048() {
  static const Key key = rsa_key(2048);
  REQUIRE(key != nullptr);
  return key.get();
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, key) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string hs256(std::string_view secret, std::string_view text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
               reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len) != nullptr);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string rs256(EVP_PKEY* key, std::string_view text) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, data, text.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data, text.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

// header.payload.signature from raw header and payload text.
std::string hs_token(std::string_view header, std::string_view payload, std::string_view secret = kSecret) {
  const std::string text = base64url_encode(header) + "." + base64url_encode(payload);
  return text + "." + base64url_encode(hs256(secret, text));
}
std::string rs_token(std::string_view header, std::string_view payload) {
  const std::string text = base64url_encode(header) + "." + base64url_encode(payload);
  return text + "." + base64url_encode(rs256(rsa2048(), text));
}

const std::string kHsHeader = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";
const std::string kRsHeader = R"({"alg":"RS256","typ":"JWT","kid":"k1"})";

json claims() {
  return json{{"sub", "alice"}, {"exp", kNow + 3600}, {"iat", kNow - 10}, {"iss", kIssuer}, {"aud", kAudience}};
}

JwtConfig config() {
  JwtConfig c;
  c.issuer = kIssuer;
  c.audience = kAudience;
  c.hs256_secret = kSecret;
  c.rs256_public_key_pem = public_pem(rsa2048());
  return c;
}

std::unique_ptr<JwtVerifier> verifier(const JwtConfig& c = config()) {
  std::string err;
  auto v = JwtVerifier::create(c, &err);
  INFO(err);
  REQUIRE(v != nullptr);
  return v;
}

JwtError hs_verify(const json& payload, const JwtConfig& c = config()) {
  return verifier(c)->verify(hs_token(kHsHeader, payload.dump()), kNow, nullptr);
}

// The token with bit `bit` of byte `at` of its part `part` (0..2) flipped, re-encoded.
std::string flip_in_part(const std::string& token, int part, size_t at, int bit) {
  std::vector<std::string> parts(3);
  size_t p = 0;
  for (char ch : token) {
    if (ch == '.') {
      p++;
    } else {
      parts[p] += ch;
    }
  }
  std::string raw;
  REQUIRE(base64url_decode(parts[part], &raw));
  REQUIRE(at < raw.size());
  raw[at] = static_cast<char>(raw[at] ^ (1 << bit));
  parts[part] = base64url_encode(raw);
  return parts[0] + "." + parts[1] + "." + parts[2];
}

}  // namespace

// --- base64url

TEST_CASE("base64url round-trips every length and refuses what is not strict") {
  std::string bytes;
  for (int n = 0; n < 40; n++) {
    const std::string text = base64url_encode(bytes);
    CHECK(text.size() == (4 * bytes.size() + 2) / 3);
    CHECK(text.find_first_of("=+/") == std::string::npos);
    std::string back;
    CHECK(base64url_decode(text, &back));
    CHECK(back == bytes);
    bytes += static_cast<char>(0xFB - 7 * n);
  }
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  std::string out = "junk";
  CHECK(base64url_decode("", &out));
  CHECK(out.empty());
  CHECK(base64url_decode("QQ", &out));
  CHECK(out == "A");
  for (const char* bad : {"QQ==", "QQ=", "Q", "QUJDR", "QR", "QUJ", "QUK", "+_8", "-/8", "QU J", "QUJD\n", " QUJD"}) {
    INFO(bad);
    CHECK_FALSE(base64url_decode(bad, &out));
    CHECK(out.empty());
  }
  CHECK(base64url_decode("QUI", &out));
  CHECK(out == "AB");
  CHECK(base64url_decode("QUJD", &out));
  CHECK(out == "ABC");
  CHECK_FALSE(base64url_decode(std::string_view("QU\0D", 4), &out));
}

// --- JWT: creation

TEST_CASE("JwtVerifier::create refuses a config it cannot use") {
  std::string err;
  JwtConfig c;
  CHECK(JwtVerifier::create(c, &err) == nullptr);
  CHECK(err.find("neither") != std::string::npos);
  CHECK(JwtVerifier::create(c, nullptr) == nullptr);

  c.rs256_public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n";
  CHECK(JwtVerifier::create(c, &err) == nullptr);
  CHECK(err == "rs256_public_key: not a PEM public key");
  c.rs256_public_key_pem = "garbage";
  CHECK(JwtVerifier::create(c, &err) == nullptr);

  const Key small = rsa_key(1024);
  REQUIRE(small != nullptr);
  c.rs256_public_key_pem = public_pem(small.get());
  err.clear();
  CHECK(JwtVerifier::create(c, &err) == nullptr);
  CHECK(err.find("1024") != std::string::npos);

  const Key ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  REQUIRE(ec != nullptr);
  c.rs256_public_key_pem = public_pem(ec.get());
  CHECK(JwtVerifier::create(c, &err) == nullptr);
  CHECK(err == "rs256_public_key: not an RSA key");

  JwtConfig hs_only;
  hs_only.hs256_secret = kSecret;
  CHECK(JwtVerifier::create(hs_only, &err) != nullptr);
  JwtConfig rs_only;
  rs_only.rs256_public_key_pem = public_pem(rsa2048());
  CHECK(JwtVerifier::create(rs_only, &err) != nullptr);
}

// --- JWT: valid tokens and signatures

TEST_CASE("valid HS256 and RS256 tokens verify and give sub and exp") {
  const auto v = verifier();
  JwtClaims out;
  CHECK(v->verify(hs_token(kHsHeader, claims().dump()), kNow, &out) == JwtError::None);
  CHECK(out.sub == "alice");
  CHECK(out.exp == kNow + 3600);
  out = {};
  CHECK(v->verify(rs_token(kRsHeader, claims().dump()), kNow, &out) == JwtError::None);
  CHECK(out.sub == "alice");
  CHECK(out.exp == kNow + 3600);
  // typ is optional and case-insensitive; anything else is not a JWT.
  CHECK(v->verify(hs_token(R"({"alg":"HS256"})", claims().dump()), kNow, nullptr) == JwtError::None);
  CHECK(v->verify(hs_token(R"({"alg":"HS256","typ":"jwt"})", claims().dump()), kNow, nullptr) == JwtError::None);
  CHECK(v->verify(hs_token(R"({"alg":"HS256","typ":"at+jwt"})", claims().dump()), kNow, nullptr) ==
        JwtError::Malformed);
  CHECK(v->verify(hs_token(R"({"alg":"HS256","typ":1})", claims().dump()), kNow, nullptr) == JwtError::Malformed);
  CHECK(std::string(to_string(JwtError::Expired)) == "token expired");
}

TEST_CASE("one bit flipped in the header, payload or signature is a bad signature") {
  const auto v = verifier();
  for (const std::string& tok : {hs_token(kHsHeader, claims().dump()), rs_token(kRsHeader, claims().dump())}) {
    REQUIRE(v->verify(tok, kNow, nullptr) == JwtError::None);
    // "k1" -> "k0": the header stays valid JSON with the same alg.
    const size_t kid = kHsHeader.find("k1") + 1;
    CHECK(v->verify(flip_in_part(tok, 0, kid, 0), kNow, nullptr) == JwtError::BadSignature);
    CHECK(v->verify(flip_in_part(tok, 1, claims().dump().find("alice") + 4, 0), kNow, nullptr) ==
          JwtError::BadSignature);
    CHECK(v->verify(flip_in_part(tok, 1, 0, 7), kNow, nullptr) == JwtError::BadSignature);
    for (size_t at : {size_t{0}, size_t{17}, size_t{31}}) {
      for (int bit : {0, 7}) CHECK(v->verify(flip_in_part(tok, 2, at, bit), kNow, nullptr) == JwtError::BadSignature);
    }
    // A signature one byte short, or empty.
    CHECK(v->verify(tok.substr(0, tok.rfind('.') + 1), kNow, nullptr) == JwtError::BadSignature);
  }
  // Signed with another secret.
  CHECK(v->verify(hs_token(kHsHeader, claims().dump(), "another secret, 32 bytes long...."), kNow, nullptr) ==
        JwtError::BadSignature);
}

// --- JWT: algorithms

TEST_CASE("alg none, unknown algorithms and crit are refused") {
  const auto v = verifier();
  const std::string payload = base64url_encode(claims().dump());
  for (const char* h : {R"({"alg":"none"})", R"({"alg":"None"})", R"({"alg":"NONE","typ":"JWT"})"}) {
    const std::string tok = base64url_encode(h) + "." + payload + ".";
    CHECK(v->verify(tok, kNow, nullptr) == JwtError::UnsupportedAlg);
    // With a signature too (any): still refused on alg.
    CHECK(v->verify(tok + base64url_encode(hs256(kSecret, tok.substr(0, tok.size() - 1))), kNow, nullptr) ==
          JwtError::UnsupportedAlg);
  }
  for (const char* h : {R"({"alg":"RS512"})", R"({"alg":"ES256"})", R"({"alg":"HS512"})", R"({"alg":"PS256"})",
                        R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"alg":"HS256","crit":["exp"]})",
                        R"({"alg":"RS256","crit":[]})"}) {
    INFO(h);
    CHECK(v->verify(hs_token(h, claims().dump()), kNow, nullptr) == JwtError::UnsupportedAlg);
    CHECK(v->verify(rs_token(h, claims().dump()), kNow, nullptr) == JwtError::UnsupportedAlg);
  }
  for (const char* h : {R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":null})", R"({"alg":["HS256"]})"}) {
    INFO(h);
    CHECK(v->verify(hs_token(h, claims().dump()), kNow, nullptr) == JwtError::Malformed);
  }
}

TEST_CASE("alg confusion: HS256 signed with the RS256 public key is refused") {
  JwtConfig c = config();
  c.hs256_secret.clear();
  const auto v = verifier(c);
  REQUIRE(v->verify(rs_token(kRsHeader, claims().dump()), kNow, nullptr) == JwtError::None);
  const std::string tok = hs_token(kHsHeader, claims().dump(), c.rs256_public_key_pem);
  CHECK(v->verify(tok, kNow, nullptr) == JwtError::UnsupportedAlg);
  // And the other way: an HS256-only verifier refuses RS256.
  JwtConfig hs_only = config();
  hs_only.rs256_public_key_pem.clear();
  CHECK(verifier(hs_only)->verify(rs_token(kRsHeader, claims().dump()), kNow, nullptr) == JwtError::UnsupportedAlg);
  // An RS256 header with an HMAC in place of the RSA signature.
  const std::string text = base64url_encode(kRsHeader) + "." + base64url_encode(claims().dump());
  CHECK(v->verify(text + "." + base64url_encode(hs256(c.rs256_public_key_pem, text)), kNow, nullptr) ==
        JwtError::BadSignature);
}

// --- JWT: time

TEST_CASE("exp, nbf and iat with the leeway") {
  json p = claims();
  p["exp"] = kNow - 31;
  CHECK(hs_verify(p) == JwtError::Expired);
  p["exp"] = kNow - 30;
  CHECK(hs_verify(p) == JwtError::None);
  p["exp"] = kNow;
  CHECK(hs_verify(p) == JwtError::None);
  p["exp"] = static_cast<double>(kNow - 31) + 0.5;
  CHECK(hs_verify(p) == JwtError::Expired);
  p["exp"] = static_cast<double>(kNow) + 0.5;
  CHECK(hs_verify(p) == JwtError::None);
  p["exp"] = 1e300;  // never expires; no overflow
  CHECK(hs_verify(p) == JwtError::None);
  p["exp"] = UINT64_MAX;
  CHECK(hs_verify(p) == JwtError::None);
  p["exp"] = INT64_MIN;
  CHECK(hs_verify(p) == JwtError::Expired);

  JwtConfig strict = config();
  strict.leeway_s = 0;
  p["exp"] = kNow - 1;
  CHECK(hs_verify(p, strict) == JwtError::Expired);

  p = claims();
  p["nbf"] = kNow + 31;
  CHECK(hs_verify(p) == JwtError::NotYetValid);
  p["nbf"] = kNow + 30;
  CHECK(hs_verify(p) == JwtError::None);
  p["nbf"] = "soon";
  CHECK(hs_verify(p) == JwtError::Malformed);
  p = claims();
  p["iat"] = kNow + 600;
  CHECK(hs_verify(p) == JwtError::NotYetValid);
  p["iat"] = nullptr;
  CHECK(hs_verify(p) == JwtError::Malformed);

  // The caller's clock at the extremes.
  const auto v = verifier();
  const std::string tok = hs_token(kHsHeader, claims().dump());
  CHECK(v->verify(tok, INT64_MAX, nullptr) == JwtError::Expired);
  CHECK(v->verify(tok, INT64_MIN, nullptr) == JwtError::NotYetValid);  // iat = kNow - 10
}

TEST_CASE("exp is required and a number") {
  json p = claims();
  p.erase("exp");
  CHECK(hs_verify(p) == JwtError::Malformed);
  for (const json& bad : {json("1700003600"), json(nullptr), json(true), json::array({kNow + 60}), json::object()}) {
    p["exp"] = bad;
    CHECK(hs_verify(p) == JwtError::Malformed);
  }
}

// --- JWT: iss, aud, sub

TEST_CASE("iss and aud must match when configured") {
  json p = claims();
  p["iss"] = "https://evil.example";
  CHECK(hs_verify(p) == JwtError::WrongIssuer);
  p["iss"] = json::array({kIssuer});
  CHECK(hs_verify(p) == JwtError::WrongIssuer);
  p.erase("iss");
  CHECK(hs_verify(p) == JwtError::WrongIssuer);
  JwtConfig any_issuer = config();
  any_issuer.issuer.clear();
  CHECK(hs_verify(p, any_issuer) == JwtError::None);

  p = claims();
  p["aud"] = "other";
  CHECK(hs_verify(p) == JwtError::WrongAudience);
  p["aud"] = json::array({"other", kAudience});
  CHECK(hs_verify(p) == JwtError::None);
  p["aud"] = json::array({"other", "skirmish2", 7, nullptr});
  CHECK(hs_verify(p) == JwtError::WrongAudience);
  p["aud"] = json::array();
  CHECK(hs_verify(p) == JwtError::WrongAudience);
  p.erase("aud");
  CHECK(hs_verify(p) == JwtError::WrongAudience);
  JwtConfig any_audience = config();
  any_audience.audience.clear();
  CHECK(hs_verify(p, any_audience) == JwtError::None);
}

TEST_CASE("sub must be 1..64 printable ASCII bytes") {
  json p = claims();
  p.erase("sub");
  CHECK(hs_verify(p) == JwtError::BadSubject);
  for (const json& bad : {json(""), json(std::string(65, 'a')), json("al ice"), json("alice\n"), json("al\x7fice"),
                          json("\xc3\xa9t\xc3\xa9"), json(42), json(nullptr), json::array({"alice"})}) {
    INFO(bad.dump());
    p["sub"] = bad;
    CHECK(hs_verify(p) == JwtError::BadSubject);
  }
  p["sub"] = std::string(64, '~');
  CHECK(hs_verify(p) == JwtError::None);
  p["sub"] = "!";
  CHECK(hs_verify(p) == JwtError::None);
}

// --- JWT: structure

TEST_CASE("structure: parts, padding, JSON objects, length") {
  const auto v = verifier();
  const std::string tok = hs_token(kHsHeader, claims().dump());
  const size_t d2 = tok.rfind('.');
  CHECK(v->verify(tok.substr(0, d2), kNow, nullptr) == JwtError::Malformed);  // 2 parts
  CHECK(v->verify(tok + ".", kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(tok + "." + tok.substr(d2 + 1), kNow, nullptr) == JwtError::Malformed);  // 4 parts
  CHECK(v->verify("", kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify("..", kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify("...", kNow, nullptr) == JwtError::Malformed);

  // '=' padding, even correctly signed, is not base64url.
  const std::string header = R"({"alg":"HS256"})";  // 15 bytes: 20 characters, no padding needed
  const std::string payload = claims().dump() + "  ";
  for (size_t extra = 0; extra < 3; extra++) {
    const std::string pl = payload + std::string(extra, ' ');
    std::string b = base64url_encode(pl);
    if (b.size() % 4 == 0) continue;
    b += std::string(4 - b.size() % 4, '=');
    const std::string text = base64url_encode(header) + "." + b;
    CHECK(v->verify(text + "." + base64url_encode(hs256(kSecret, text)), kNow, nullptr) == JwtError::Malformed);
  }
  REQUIRE((tok.size() - d2 - 1) % 4 != 0);  // a 43-character signature
  CHECK(v->verify(tok + "=", kNow, nullptr) == JwtError::Malformed);
  // A signature spelled in the standard alphabet, or with whitespace.
  std::string std_alpha = tok;
  bool changed = false;
  for (size_t i = d2 + 1; i < std_alpha.size(); i++) {
    if (std_alpha[i] == '-') std_alpha[i] = '+', changed = true;
    if (std_alpha[i] == '_') std_alpha[i] = '/', changed = true;
  }
  if (changed) CHECK(v->verify(std_alpha, kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(tok.substr(0, 10) + " " + tok.substr(10), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(tok + "\n", kNow, nullptr) == JwtError::Malformed);

  // Properly signed, but not a JSON object.
  CHECK(v->verify(hs_token(kHsHeader, "not json"), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token(kHsHeader, R"(["sub","alice"])"), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token(kHsHeader, claims().dump() + "x"), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token(kHsHeader, ""), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token("not json", claims().dump()), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token(R"(["HS256"])", claims().dump()), kNow, nullptr) == JwtError::Malformed);
  CHECK(v->verify(hs_token(std::string(2000, '['), claims().dump()), kNow, nullptr) == JwtError::Malformed);

  // The length first: max_token_bytes is allowed, one more is not.
  JwtConfig c = config();
  c.max_token_bytes = static_cast<uint32_t>(tok.size());
  const auto exact = verifier(c);
  CHECK(exact->verify(tok, kNow, nullptr) == JwtError::None);
  c.max_token_bytes = static_cast<uint32_t>(tok.size() - 1);
  CHECK(verifier(c)->verify(tok, kNow, nullptr) == JwtError::TooLong);
  CHECK(v->verify(std::string(4097, 'a'), kNow, nullptr) == JwtError::TooLong);
}

TEST_CASE("one verifier is used from several threads at once") {
  const auto v = verifier();
  const std::string hs = hs_token(kHsHeader, claims().dump());
  const std::string rs = rs_token(kRsHeader, claims().dump());
  const std::string bad = flip_in_part(rs, 2, 5, 3);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; i++) {
        JwtClaims out;
        if (v->verify(hs, kNow, &out) != JwtError::None || out.sub != "alice") failures[t]++;
        if (v->verify(rs, kNow, &out) != JwtError::None) failures[t]++;
        if (v->verify(bad, kNow, &out) != JwtError::BadSignature) failures[t]++;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) CHECK(f == 0);
}

TEST_CASE("random mutations of a valid token never verify (deterministic)") {
  const auto v = verifier();
  std::mt19937 rng(20240611);
  for (const std::string& tok : {hs_token(kHsHeader, claims().dump()), rs_token(kRsHeader, claims().dump())}) {
    REQUIRE(v->verify(tok, kNow, nullptr) == JwtError::None);
    int wrong = 0;
    const int rounds = 10'000;
    for (int i = 0; i < rounds; i++) {
      std::string m = tok;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; e++) {
        const size_t at = rng() % (m.size() + 1);
        switch (rng() % 5) {
          case 0:  // replace a byte by any byte
            if (at < m.size()) m[at] = static_cast<char>(rng() & 0xFF);
            break;
          case 1:  // replace a byte by a base64url character or a dot
            if (at < m.size()) m[at] = "ABCXYZabcxyz0189-_."[rng() % 19];
            break;
          case 2:  // insert
            m.insert(at, 1, "Aa0-_.=+/ \0"[rng() % 11]);
            break;
          case 3:  // delete
            if (at < m.size()) m.erase(at, 1);
            break;
          default:  // truncate
            m.resize(at);
            break;
        }
      }
      const JwtError got = v->verify(m, kNow, nullptr);
      if ((got == JwtError::None) != (m == tok)) wrong++;
    }
    CHECK(wrong == 0);
  }
}

// --- join tokens

namespace {

const std::string kFleet = "fleet secret: 32 bytes or longer!";

JoinClaims join_claims() {
  JoinClaims c;
  c.match = 0x0123456789ABCDEFull;
  c.account = "alice";
  c.expires_ms = kNow * 1000 + 30'000;
  c.instance = "eu-west-1/skirmish-7";
  return c;
}

}  // namespace

TEST_CASE("join token: round trip") {
  const JoinClaims c = join_claims();
  const std::string tok = sign_join_token(kFleet, c);
  REQUIRE(!tok.empty());
  for (char ch : tok) CHECK(((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                             ch == '-' || ch == '_'));
  JoinClaims out;
  CHECK(verify_join_token(kFleet, tok, kNow * 1000, &out) == JoinTokenError::None);
  CHECK(out.match == c.match);
  CHECK(out.account == c.account);
  CHECK(out.expires_ms == c.expires_ms);
  CHECK(out.instance == c.instance);

  // The largest fields, and empty ones.
  JoinClaims big = c;
  big.account = std::string(kMaxAccountBytes, 'x');
  big.instance = std::string(kMaxJoinInstanceBytes, 'y');
  big.match = UINT64_MAX;
  big.expires_ms = INT64_MAX;
  const std::string big_tok = sign_join_token(kFleet, big);
  CHECK(big_tok.size() == 239);
  CHECK(verify_join_token(kFleet, big_tok, 0, &out) == JoinTokenError::None);
  CHECK(out.account == big.account);
  CHECK(out.instance == big.instance);
  CHECK(out.match == UINT64_MAX);
  CHECK(out.expires_ms == INT64_MAX);
  JoinClaims empty;
  empty.expires_ms = 1;
  CHECK(verify_join_token(kFleet, sign_join_token(kFleet, empty), 0, &out) == JoinTokenError::None);
  CHECK(out.account.empty());

  // Fields too long, or no secret: nothing signed.
  JoinClaims long_account = c;
  long_account.account = std::string(kMaxAccountBytes + 1, 'x');
  CHECK(sign_join_token(kFleet, long_account).empty());
  JoinClaims long_instance = c;
  long_instance.instance = std::string(kMaxJoinInstanceBytes + 1, 'y');
  CHECK(sign_join_token(kFleet, long_instance).empty());
  CHECK(sign_join_token("", c).empty());
  CHECK(verify_join_token("", tok, kNow * 1000, &out) == JoinTokenError::BadSignature);
  CHECK(std::string(to_string(JoinTokenError::Expired)) == "join token expired");
}

TEST_CASE("join token: every character changed fails, never None") {
  const std::string tok = sign_join_token(kFleet, join_claims());
  for (size_t i = 0; i < tok.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string m = tok;
      m[i] = static_cast<char>(m[i] ^ (1 << bit));
      const JoinTokenError e = verify_join_token(kFleet, m, kNow * 1000, nullptr);
      INFO("byte " << i << " bit " << bit);
      CHECK((e == JoinTokenError::BadSignature || e == JoinTokenError::Malformed));
    }
  }
  // Each byte of the decoded token too (valid base64url, other bytes).
  std::string raw;
  REQUIRE(base64url_decode(tok, &raw));
  for (size_t i = 0; i < raw.size(); i++) {
    std::string m = raw;
    m[i] = static_cast<char>(m[i] ^ 0x01);
    const JoinTokenError e = verify_join_token(kFleet, base64url_encode(m), kNow * 1000, nullptr);
    CHECK((e == JoinTokenError::BadSignature || e == JoinTokenError::Malformed));
  }
}

TEST_CASE("join token: wrong secret, expired, too long, truncated") {
  const JoinClaims c = join_claims();
  const std::string tok = sign_join_token(kFleet, c);
  CHECK(verify_join_token("another fleet secret, 32 bytes..", tok, kNow * 1000, nullptr) ==
        JoinTokenError::BadSignature);
  CHECK(verify_join_token(kFleet, tok, c.expires_ms - 1, nullptr) == JoinTokenError::None);
  CHECK(verify_join_token(kFleet, tok, c.expires_ms, nullptr) == JoinTokenError::Expired);
  CHECK(verify_join_token(kFleet, tok, INT64_MAX, nullptr) == JoinTokenError::Expired);
  CHECK(verify_join_token(kFleet, std::string(513, 'A'), 0, nullptr) == JoinTokenError::Malformed);
  CHECK(verify_join_token(kFleet, tok + std::string(513 - tok.size(), 'A'), 0, nullptr) == JoinTokenError::Malformed);
  CHECK(verify_join_token(kFleet, "", 0, nullptr) == JoinTokenError::Malformed);
  for (size_t n = 0; n < tok.size(); n++) {
    const JoinTokenError e = verify_join_token(kFleet, tok.substr(0, n), kNow * 1000, nullptr);
    CHECK((e == JoinTokenError::BadSignature || e == JoinTokenError::Malformed));
  }
  // Extra bytes after the MAC.
  std::string raw;
  REQUIRE(base64url_decode(tok, &raw));
  CHECK(verify_join_token(kFleet, base64url_encode(raw + "x"), kNow * 1000, nullptr) != JoinTokenError::None);
  CHECK(verify_join_token(kFleet, tok + "A", kNow * 1000, nullptr) != JoinTokenError::None);
  // out is untouched on failure.
  JoinClaims out;
  out.account = "kept";
  CHECK(verify_join_token(kFleet, tok, c.expires_ms, &out) == JoinTokenError::Expired);
  CHECK(out.account == "kept");
}

TEST_CASE("join token: random mutations never verify (deterministic)") {
  const std::string tok = sign_join_token(kFleet, join_claims());
  std::mt19937 rng(7);
  int wrong = 0;
  for (int i = 0; i < 10'000; i++) {
    std::string m = tok;
    const size_t at = rng() % (m.size() + 1);
    switch (rng() % 4) {
      case 0:
        if (at < m.size()) m[at] = static_cast<char>(rng() & 0xFF);
        break;
      case 1:
        if (at < m.size()) m[at] = "ABCXYZabcxyz0189-_"[rng() % 18];
        break;
      case 2:
        m.insert(at, 1, "Aa0-_=+/ "[rng() % 9]);
        break;
      default:
        m.resize(at);
        break;
    }
    if ((verify_join_token(kFleet, m, kNow * 1000, nullptr) == JoinTokenError::None) != (m == tok)) wrong++;
  }
  CHECK(wrong == 0);
}
