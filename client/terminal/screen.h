// The terminal side of skirmish-client: ncurses set-up and teardown, keys
// in, the Model drawn out. Every ncurses call of the program is in
// screen.cpp, so nothing else sees curses.h and its macros.
//
// Contract
// - begin() takes over the terminal on stdin/stdout (newterm, cbreak,
//   noecho, keypad, nodelay, hidden cursor); it returns false with a reason
//   instead of exiting the process as initscr() would. end() gives the
//   terminal back (endwin) and is safe to call any number of times, also
//   when begin() failed; the destructor calls it.
// - Signal handlers for SIGINT, SIGTERM and SIGWINCH must be installed
//   before begin() (the App does it with uv_signal_t): ncurses then leaves
//   them alone instead of installing its own, which would exit without the
//   App noticing.
// - next_key() never blocks (nodelay): false when no key is waiting. It is
//   called when libuv reports stdin readable.
// - draw() paints the whole screen from the Model (and the GameUi) alone, clips
//   everything to the terminal, and is cheap enough for 30 calls a second
//   (ncurses sends only the cells that changed).
//
// Layout (columns x rows of the terminal, at least kMinCols x kMinRows):
//   +---------- game ---------+ panel (kPanelWidth columns)
//   |  the game's GameUi       | state, server, worker, ping, rating,
//   |  draws this box          | game, match, tick, you, then the game's
//   +-------------------------+ rows (game_ui.h), news, the last error
//   one line of key help (the game's while in a match)
// Before a match the box holds a message, after one the results; a match
// of a game this client does not know shows why, and the session stays.
#pragma once

#include <cstdint>
#include <string>

#include "client/terminal/game_ui.h"
#include "client/terminal/model.h"

namespace skirmish::terminal {

inline constexpr int kPanelWidth = 34;
inline constexpr int kMinCols = kPanelWidth + 20;
inline constexpr int kMinRows = 12;

class Screen {
 public:
  Screen() = default;
  ~Screen();
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  bool begin(std::string* error);
  void end();
  bool active() const { return screen_ != nullptr; }

  // One key from the terminal, if any is waiting.
  bool next_key(Command* out);
  // The terminal is now rows x cols (after SIGWINCH).
  void resize(int rows, int cols);
  // The next draw repaints every cell (Ctrl-L).
  void invalidate();
  // `game` is the match's GameUi, nullptr when none (unknown game, or
  // before the first match).
  void draw(const Model& m, const GameUi* game);

 private:
  void* screen_ = nullptr;  // SCREEN*
  bool colors_ = false;
};

}  // namespace skirmish::terminal
