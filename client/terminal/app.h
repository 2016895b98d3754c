// The App of skirmish-client: one libuv loop, one skirmish::client::Client,
// the keyboard, and the Model the Screen draws.
//
// Contract
// - The caller owns the loop. start() installs the signal handlers
//   (SIGINT, SIGTERM, SIGHUP: quit; SIGWINCH: resize), starts the Screen
//   (after the handlers, see screen.h), watches stdin with a uv_poll_t on
//   fd 0, starts a 1 s timer (a Ping, and the "searching for N s" line) and
//   connects. Then the caller runs the loop until it returns, calls
//   finish(), runs the loop once more (libuv releases the socket) and
//   closes it.
// - The loop returns after quit: every handle of the App is closed, the
//   Client closed, and the terminal already given back (Screen::end), so
//   anything printed afterwards lands on the normal screen.
// - stdin stays blocking: uv_poll_init makes fd 0 non-blocking, and fd 0
//   shares its open file with stdout and with the shell that started us,
//   so the App puts the original flags back at once (ncurses' nodelay mode
//   does not need O_NONBLOCK) and again in finish().
// - Flow: Welcome -> QueueJoin -> MatchFound (names the game: the App makes
//   its GameUi, game_ui.h, and hands it the keys and snapshots of the
//   match, which decide the inputs; a game this client does not know is
//   shown as a message and gets no input, the session stays) -> MatchEnd
//   -> results until `n`. After a drop the library resumes by itself
//   (Options.reconnect); the panel shows "reconnecting (attempt N)", and a
//   resumed Welcome puts the App back where it was (in the match, or the
//   queue, asking QueueStatus whether the ticket survived).
// - Redraws: on every Snapshot, key, state change and timer tick, at most
//   once per kMinRedrawMs (a late one is deferred to a timer, never lost).
// - Nothing the server sends is trusted: names, game names and params are
//   sanitized, slots >= 16 ignored, params parsed with fallbacks by the
//   GameUi, every list drawn as far as it fits.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "client/terminal/game_ui.h"
#include "client/terminal/model.h"
#include "client/terminal/screen.h"
#include "client/lib/skirmish_client.h"

namespace skirmish::terminal {

inline constexpr uint64_t kMinRedrawMs = 33;   // ~30 redraws per second at most
inline constexpr uint64_t kPingIntervalMs = 1000;

struct AppOptions {
  std::string host;    // numeric address (main resolved --target)
  uint16_t port = 0;
  std::string target;  // as the user wrote it, for the screen
  std::string name;    // Hello.name
};

class App {
 public:
  App(uv_loop_t* loop, AppOptions options, Screen& screen);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // false with a reason when the terminal or the loop cannot be set up
  // (nothing is left running then: the caller may run the loop to let
  // libuv close what was opened).
  bool start(std::string* error);
  // After the loop returned: destroys the Client and restores stdin.
  void finish();

  // 0 after `q`, 128 + signal after SIGINT/SIGTERM/SIGHUP, 1 when the
  // terminal went away.
  int exit_code() const { return exit_code_; }
  const Model& model() const { return model_; }

 private:
  void wire_callbacks();
  void connect();
  void queue();
  void quit(int code);
  void on_command(Command c);
  void on_stdin(int status, int events);
  void on_signal(int signum);
  void on_snapshot(const client::World& w);
  void request_redraw();
  void draw_now();
  static std::string close_reason(int reason, const client::Client& c);

  uv_loop_t* loop_;
  AppOptions opts_;
  Screen& screen_;
  std::unique_ptr<client::Client> client_;
  Model model_;
  std::unique_ptr<GameUi> game_;  // of the current (or last) match; nullptr: none or unknown game

  uv_poll_t stdin_poll_{};
  uv_timer_t tick_timer_{};
  uv_timer_t redraw_timer_{};
  std::array<uv_signal_t, 4> signals_{};
  bool handles_open_ = false;
  bool poll_open_ = false;
  int stdin_flags_ = -1;  // fcntl(0, F_GETFL) before uv_poll_init

  bool quitting_ = false;
  bool asked_queue_status_ = false;  // after a resume while queued
  uint32_t empty_reads_ = 0;         // readable stdin with no key: hangup
  uint64_t last_draw_ms_ = 0;
  int exit_code_ = 0;
};

}  // namespace skirmish::terminal
