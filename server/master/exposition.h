// The Prometheus text exposition format (0.0.4), as the official Go client
// writes it: HELP and TYPE once per family, then its samples; floats in the
// shortest form that reads back to the same double (0.098, not
// 0.098000000000000004), integers as integers, +Inf, -Inf and NaN spelled
// so; label values escaped (backslash, quote, newline).
//
// Header-only and allocation-light (one string grows; no stream), so the
// unit test reads it without the server's libraries.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace skirmish::master {

// `v` as the Go client prints a float sample or an `le` bound
// (strconv.FormatFloat(v, 'g', -1, 64)): the shortest digits that read back
// to `v`, in exponent form when the decimal exponent is below -4 or at least
// 6 ("5e-05", "1e+06"), else plain ("0.098", "3", "123456.5").
inline std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char b[40];
  auto sci = std::to_chars(b, b + sizeof b, v, std::chars_format::scientific);  // "d.ddde+XX", shortest
  const std::string_view s(b, size_t(sci.ptr - b));
  const size_t e = s.rfind('e');
  int exp = 0;
  std::from_chars(s.data() + e + 1 + (s[e + 1] == '+'), s.data() + s.size(), exp);
  if (exp < -4 || exp >= 6) return std::string(s);
  auto fixed = std::to_chars(b, b + sizeof b, v, std::chars_format::fixed);  // same digits, plain
  return std::string(b, fixed.ptr);
}

inline std::string format_value(std::uint64_t v) { return std::to_string(v); }

// A label value with \, " and newline escaped.
inline std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

class Exposition {
 public:
  // One metric family: HELP and TYPE once, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is the inside of the braces (`role="worker",index="0"`) or "".
  void sample(std::string_view name, std::string_view labels, double v) { line(name, labels, format_value(v)); }
  void sample(std::string_view name, std::string_view labels, std::uint64_t v) { line(name, labels, format_value(v)); }
  std::string take() { return std::move(out_); }

 private:
  void line(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

}  // namespace skirmish::master
