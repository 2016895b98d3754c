// skirmish-client: play Skirmish in a terminal (client/terminal/README.md).
//
//   skirmish-client --target 127.0.0.1:7777 --name ann
//
// Connects, queues, draws the arena with ncurses, sends one Input per
// Snapshot with the direction held by the arrow keys or WASD, shows scores,
// ping, tick and time, the results after each match, and resumes by itself
// after a drop (a worker restart). q quits.
//
// Contract: stdin and stdout must be a terminal. The terminal is given back
// (endwin) on q, on SIGINT/SIGTERM/SIGHUP and on any error, before anything
// is printed. Exit codes: 0 after q, 2 on bad usage, 1 when the terminal
// cannot be used or goes away, 128 + signal after SIGINT/SIGTERM/SIGHUP.
#include <arpa/inet.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "app.h"
#include "screen.h"

namespace term = skirmish::terminal;

namespace {

// "127.0.0.1:7777" or "[::1]:7777" into a numeric host and a port.
bool parse_target(const std::string& target, std::string* host, uint16_t* port) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == target.size()) return false;
  std::string h = target.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) != 1 && inet_pton(AF_INET6, h.c_str(), &a6) != 1) return false;
  const std::string p = target.substr(colon + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5) return false;
  const long v = std::strtol(p.c_str(), nullptr, 10);
  if (v < 1 || v > 65535) return false;
  *host = h;
  *port = uint16_t(v);
  return true;
}

std::string default_name() {
  const char* u = std::getenv("USER");
  std::string n = u != nullptr && *u != '\0' ? u : "player";
  return n.substr(0, 32);
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "127.0.0.1:7777";
  std::string name = default_name();
  CLI::App cli{"skirmish-client: play Skirmish in a terminal"};
  cli.add_option("--target", target, "server address, numeric host:port")->capture_default_str();
  cli.add_option("--name", name, "your name in matches (1..32 bytes)")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  term::AppOptions opts;
  opts.target = target;
  opts.name = name;
  if (!parse_target(target, &opts.host, &opts.port)) {
    std::fprintf(stderr, "skirmish-client: --target: expected a numeric host:port, got \"%s\"\n", target.c_str());
    return 2;
  }
  if (name.empty() || name.size() > 32) {
    std::fprintf(stderr, "skirmish-client: --name must be 1..32 bytes\n");
    return 2;
  }
  if (isatty(STDIN_FILENO) == 0 || isatty(STDOUT_FILENO) == 0) {
    std::fprintf(stderr, "skirmish-client: stdin and stdout must be a terminal\n");
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);  // the client library's contract
  std::setlocale(LC_ALL, "");

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 1;
  uint32_t matches = 0;
  std::string failure, last_error;
  {
    term::Screen screen;
    term::App app(&loop, opts, screen);
    if (app.start(&failure)) {
      uv_run(&loop, UV_RUN_DEFAULT);
      code = app.exit_code();
    }
    screen.end();  // already done by the App on quit; a no-op then
    app.finish();
    matches = app.model().matches_played;
    last_error = app.model().last_error;
    uv_run(&loop, UV_RUN_DEFAULT);  // libuv releases the socket and the handles
  }
  if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "skirmish-client: loop not empty at exit\n");

  if (!failure.empty()) {
    std::fprintf(stderr, "skirmish-client: %s\n", failure.c_str());
    return 1;
  }
  if (code == 1) std::fprintf(stderr, "skirmish-client: the terminal went away\n");
  if (!last_error.empty()) std::printf("skirmish-client: last error: %s\n", last_error.c_str());
  std::printf("skirmish-client: bye (%u match%s played)\n", matches, matches == 1 ? "" : "es");
  return code;
}
