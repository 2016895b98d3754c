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
// - draw() paints the whole screen from the Model and nothing else, clips
//   everything to the terminal, and is cheap enough for 30 calls a second
//   (ncurses sends only the cells that changed).
//
// Layout (columns x rows of the terminal, at least kMinCols x kMinRows):
//   +--------- arena ---------+ panel (kPanelWidth columns)
//   |  o      1               | state, match, tick, time, ping, worker,
//   |        0*               | you, scores per player, the last error
//   +-------------------------+
//   one line of key help
// Players are the hex digit of their slot (you: bold, reversed; stunned:
// red with a '*' beside; disconnected: dim), coins 'o'. The arena
// (arena_width x arena_height units) is scaled to the inner box; y grows
// downwards.
#pragma once

#include <cstdint>
#include <string>

#include "client/terminal/model.h"

namespace skirmish::terminal {

inline constexpr int kPanelWidth = 34;
inline constexpr int kMinCols = kPanelWidth + 20;
inline constexpr int kMinRows = 12;

enum class Command : uint8_t {
  None,    // a key with no meaning
  Up,      // Up arrow, w
  Down,    // Down arrow, s
  Left,    // Left arrow, a
  Right,   // Right arrow, d
  Stop,    // x
  Tag,     // space
  Queue,   // n: queue again after a match, connect again when disconnected
  Quit,    // q
  Resize,  // KEY_RESIZE
  Redraw,  // Ctrl-L: repaint every cell
};

// Cell (column or row) of coordinate v in an arena of `size` units drawn on
// `cells` cells: floor(v * cells / size), clamped into 0..cells-1.
int scale_to_cells(int32_t v, int32_t size, int cells);

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
  void draw(const Model& m);

 private:
  void* screen_ = nullptr;  // SCREEN*
  bool colors_ = false;
};

}  // namespace skirmish::terminal
