// skirmish-client: play Skirmish in a terminal (client/terminal/README.md).
//
//   skirmish-client --target localhost:7777 --name ann
//
// Connects, queues, and plays the game the server runs (MatchFound.game):
// the arena (arrows/WASD move, space tags) or battleship (arrows aim,
// Enter fires), each drawn with ncurses by its own renderer (game_ui.h);
// shows ping, tick, the game's panel, the results after each match, and
// resumes by itself after a drop (a worker restart). q quits.
//
// Contract: stdin and stdout must be a terminal. The terminal is given back
// (endwin) on q, on SIGINT/SIGTERM/SIGHUP and on any error, before anything
// is printed. Exit codes: 0 after q, 2 on bad usage, 1 when the terminal
// cannot be used or goes away, 128 + signal after SIGINT/SIGTERM/SIGHUP.
#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "client/terminal/app.h"
#include "client/terminal/screen.h"

namespace term = skirmish::terminal;

namespace {

// "localhost:7777", "127.0.0.1:7777" or "[::1]:7777" into a numeric host
// and a port. A name is resolved once, here, before the loop runs (as the
// load tester does), so the loop never blocks on DNS and every resume goes
// to the same address. Of a name's addresses the first IPv4 one is taken
// when there is one: the server listens on 127.0.0.1 by default, and
// Debian's /etc/hosts lists ::1 first for localhost.
bool parse_target(const std::string& target, std::string* host, uint16_t* port, std::string* why) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == target.size()) {
    *why = "expected host:port";
    return false;
  }
  std::string h = target.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = target.substr(colon + 1);
  const long v = p.find_first_not_of("0123456789") == std::string::npos && p.size() <= 5
                     ? std::strtol(p.c_str(), nullptr, 10)
                     : 0;
  if (v < 1 || v > 65535) {
    *why = "the port must be 1..65535";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int r = getaddrinfo(h.c_str(), nullptr, &hints, &res); r != 0 || res == nullptr) {
    *why = "cannot resolve \"" + h + "\": " + gai_strerror(r);
    return false;
  }
  const addrinfo* pick = res;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  char ip[INET6_ADDRSTRLEN] = {};
  if (pick->ai_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr, ip, sizeof ip);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr, ip, sizeof ip);
  freeaddrinfo(res);
  *host = ip;
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
  cli.add_option("--target", target, "server address, host:port (a name is resolved once, at start)")->capture_default_str();
  cli.add_option("--name", name, "your name in matches (1..32 bytes)")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  term::AppOptions opts;
  opts.target = target;
  opts.name = name;
  std::string why;
  if (!parse_target(target, &opts.host, &opts.port, &why)) {
    std::fprintf(stderr, "skirmish-client: --target \"%s\": %s\n", target.c_str(), why.c_str());
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
