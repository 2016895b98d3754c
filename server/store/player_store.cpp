// The checks every PlayerStore applies; the contract is in player_store.h.
#include "store/player_store.h"

#include <cmath>
#include <cstdio>

namespace skirmish::store {

namespace {

bool printable(unsigned char c) { return c >= 0x21 && c <= 0x7E; }

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

bool valid_account(std::string_view account) {
  if (account.empty() || account.size() > kMaxAccountBytes) return false;
  for (char c : account)
    if (!printable(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string quote_account(std::string_view account) {
  std::string out = "\"";
  const size_t shown = account.size() < kMaxAccountBytes ? account.size() : kMaxAccountBytes;
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(account[i]);
    if (printable(c) && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", c);
      out += esc;
    }
  }
  out += '"';
  if (shown < account.size()) out += "...(" + std::to_string(account.size()) + " bytes)";
  return out;
}

bool check_record(const PlayerRecord& r, std::string* why) {
  std::string problem;
  if (r.account.empty())
    problem = "empty account";
  else if (r.account.size() > kMaxAccountBytes)
    problem = "account longer than " + std::to_string(kMaxAccountBytes) + " bytes";
  else if (!valid_account(r.account))
    problem = "account has bytes outside 0x21..0x7E";
  else if (!std::isfinite(r.rating))
    problem = "rating " + number(r.rating) + " is not finite";
  else if (!std::isfinite(r.rd) || r.rd < kMinRd || r.rd > kMaxRd)
    problem = "rd " + number(r.rd) + " outside [30, 350]";
  else if (!std::isfinite(r.volatility) || r.volatility <= 0)
    problem = "volatility " + number(r.volatility) + " is not finite and > 0";
  else
    return true;
  if (why) *why = "account " + quote_account(r.account) + ": " + problem;
  return false;
}

}  // namespace skirmish::store
