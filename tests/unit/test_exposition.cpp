// The Prometheus text writer: numbers exactly as the Go client
// (strconv.FormatFloat(v, 'g', -1, 64)) and the exposition's rules.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "master/exposition.h"

using skirmish::master::escape_label;
using skirmish::master::Exposition;
using skirmish::master::format_value;

TEST_CASE("floats print in their shortest round-trip form, as the Go client prints them") {
  CHECK(format_value(0.098) == "0.098");  // not 0.098000000000000004 (%.17g)
  CHECK(format_value(98 / 1000.0) == "0.098");
  CHECK(format_value(0.1 + 0.2) == "0.30000000000000004");  // a different double, so its own digits
  CHECK(format_value(12.345) == "12.345");
  CHECK(format_value(3.0) == "3");
  CHECK(format_value(0.0) == "0");
  CHECK(format_value(123456.5) == "123456.5");
  // Exponent form below 1e-4 and from 1e6, two exponent digits at least.
  CHECK(format_value(0.0001) == "0.0001");
  CHECK(format_value(5e-05) == "5e-05");
  CHECK(format_value(1e6) == "1e+06");
  CHECK(format_value(1234567.0) == "1.234567e+06");
  CHECK(format_value(1.79618764318e+09) == "1.79618764318e+09");
  CHECK(format_value(1e21) == "1e+21");
  CHECK(format_value(-2.5) == "-2.5");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
  // Histogram bounds in seconds from microseconds and milliseconds.
  CHECK(format_value(50 / 1e6) == "5e-05");
  CHECK(format_value(250 / 1e6) == "0.00025");
  CHECK(format_value(2500 / 1e6) == "0.0025");
  CHECK(format_value(100000 / 1e6) == "0.1");
  CHECK(format_value(120000 / 1e3) == "120");
}

TEST_CASE("integers print as integers, whatever their size") {
  CHECK(format_value(std::uint64_t{0}) == "0");
  CHECK(format_value(std::uint64_t{123456789}) == "123456789");
  CHECK(format_value(std::numeric_limits<std::uint64_t>::max()) == "18446744073709551615");
}

TEST_CASE("a family is HELP, TYPE, then its samples, and label values are escaped") {
  Exposition w;
  w.family("x_total", "counter", "Things.");
  w.sample("x_total", "", std::uint64_t{7});
  w.sample("x_total", "role=\"worker\",index=\"0\"", 0.5);
  CHECK(w.take() == "# HELP x_total Things.\n# TYPE x_total counter\nx_total 7\nx_total{role=\"worker\",index=\"0\"} 0.5\n");
  CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}
