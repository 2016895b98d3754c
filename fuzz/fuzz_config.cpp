// fuzz_config: any text into the config loader. The contract (config.h):
// nothing throws, prints or exits; the result is a valid Config or one line
// of error text. toml++ is compiled into this fuzzer (fuzz/CMakeLists.txt),
// so the TOML parser's coverage guides it too.
//
// Input: TOML text, optionally preceded by a first line "#!flags a b c":
// then the text goes to a memfd and parse_command_line runs on
// {"skirmish-server", "--config", /proc/self/fd/N, a, b, c} (the flags path
// and load_file; a further -c/--config is dropped: it could name a file that
// blocks); otherwise load_string runs on the whole text.
//
// Checked: exactly one of Config / error; an error is non-empty, starts
// with "config: " and has no control character (so no '\n'); on success
// the error is left alone, validate() accepts the Config, "auto" workers are
// resolved (1..64) and describe() works; parse_command_line's exit codes
// match its status (0 Ok/Exit, 2 Error).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz_config: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace {

using namespace skirmish::config;

bool one_line(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

void check_error(const std::string& e) {
  if (!one_line(e) || e.rfind("config: ", 0) != 0) std::fprintf(stderr, "error text: [%s]\n", e.c_str());
  FUZZ_CHECK(!e.empty());
  FUZZ_CHECK(e.rfind("config: ", 0) == 0);
  FUZZ_CHECK(one_line(e));
}

void check_config(const Config& c) {
  std::string why;
  if (!validate(c, why)) std::fprintf(stderr, "loaded but invalid: %s\n", why.c_str());
  FUZZ_CHECK(validate(c, why));
  FUZZ_CHECK(c.workers >= 1 && c.workers <= 64);
  FUZZ_CHECK(c.max_frame_bytes >= c.max_frame_bytes_handshake);
  FUZZ_CHECK(!describe(c).empty());
}

void with_flags(std::string_view flags, std::string_view toml) {
  std::vector<std::string> args = {"skirmish-server", "--config", ""};
  size_t i = 0;
  while (i < flags.size()) {
    while (i < flags.size() && flags[i] == ' ') ++i;
    size_t j = i;
    while (j < flags.size() && flags[j] != ' ') ++j;
    const std::string_view a = flags.substr(i, j - i);
    // Our --config only: another could name a file that blocks (a FIFO, a tty).
    const bool config_flag = a.substr(0, 2) == "-c" || a.substr(0, 8) == "--config";
    if (!a.empty() && !config_flag && args.size() < 32) args.emplace_back(a);
    i = j;
  }
  const int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(write(fd, toml.data(), toml.size()) == ssize_t(toml.size()));
  args[2] = "/proc/self/fd/" + std::to_string(fd);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  const Options o = parse_command_line(int(args.size()), argv.data());
  close(fd);
  switch (o.status) {
    case ParseStatus::Ok:
      FUZZ_CHECK(o.exit_code == 0);
      check_config(o.config);
      break;
    case ParseStatus::Exit:  // --help, --version: text for stdout
      FUZZ_CHECK(o.exit_code == 0);
      FUZZ_CHECK(!o.message.empty());
      break;
    case ParseStatus::Error:
      FUZZ_CHECK(o.exit_code == 2);
      check_error(o.message);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kFlags = "#!flags ";
  if (text.substr(0, kFlags.size()) == kFlags) {
    const size_t eol = text.find('\n');
    const std::string_view flags = text.substr(kFlags.size(), eol == text.npos ? text.npos : eol - kFlags.size());
    with_flags(flags, eol == text.npos ? std::string_view() : text.substr(eol + 1));
    return 0;
  }
  std::string error = "(untouched)";
  const auto c = load_string(text, error);
  if (c) {
    FUZZ_CHECK(error == "(untouched)");
    FUZZ_CHECK(c->source == "<string>");
    check_config(*c);
  } else {
    check_error(error);
  }
  return 0;
}
