// Strict base64url; the contract is in base64url.h.
#include "auth/base64url.h"

#include <array>
#include <cstdint>

namespace skirmish::auth {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kBad = 0xFF;

constexpr std::array<uint8_t, 256> make_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = kBad;
  for (uint8_t i = 0; i < 64; i++) t[static_cast<uint8_t>(kAlphabet[i])] = i;
  return t;
}
constexpr std::array<uint8_t, 256> kTable = make_table();

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  const size_t n = bytes.size();
  std::string out;
  out.reserve((n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1));
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

bool base64url_decode(std::string_view text, std::string* out) {
  out->clear();
  const size_t n = text.size();
  const size_t rest = n % 4;
  if (rest == 1) return false;
  out->reserve((n / 4) * 3 + (rest == 0 ? 0 : rest - 1));
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t v = kTable[p[i]];
    if (v == kBad) {
      out->clear();
      return false;
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((acc >> bits) & 0xFF);
    }
    acc &= (1u << bits) - 1;  // keep only the bits not yet written
  }
  if (acc != 0) {  // non-canonical: the unused trailing bits must be zero
    out->clear();
    return false;
  }
  return true;
}

}  // namespace skirmish::auth
