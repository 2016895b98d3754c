// The App of skirmish-client: see app.h for the contract.
#include "client/terminal/app.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

namespace skirmish::terminal {
namespace {

constexpr int kSignals[4] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
constexpr uint32_t kMaxEmptyReads = 100;  // readable stdin yielding no key this often: it hung up
constexpr int kMaxKeysPerWake = 1024;
constexpr size_t kMaxResults = 64;
constexpr size_t kMaxErrorChars = 200;

std::string fmt_text(const char* f, auto... args) {
  char b[256];
  std::snprintf(b, sizeof b, f, args...);
  return b;
}

const char* end_reason_text(proto::EndReason r) {
  switch (r) {
    case proto::EndReason::ScoreLimit: return "score limit reached";
    case proto::EndReason::TimeLimit: return "time is up";
    case proto::EndReason::Abandoned: return "abandoned";
    case proto::EndReason::ShutdownDeadline: return "cut short: the server shut down";
    case proto::EndReason::Completed: return "completed";
    case proto::EndReason::GameError: return "the game failed on this match (quarantined)";
  }
  return "ended";
}

}  // namespace

App::App(uv_loop_t* loop, AppOptions options, Screen& screen)
    : loop_(loop), opts_(std::move(options)), screen_(screen) {
  client::Options co;
  co.name = opts_.name;
  co.reconnect.enabled = true;
  client_ = std::make_unique<client::Client>(loop_, co);
  model_.name = sanitize_name(opts_.name, 32);
  model_.target = opts_.target;
}

App::~App() = default;

bool App::start(std::string* error) {
  uv_timer_init(loop_, &tick_timer_);
  uv_timer_init(loop_, &redraw_timer_);
  tick_timer_.data = this;
  redraw_timer_.data = this;
  for (size_t i = 0; i < signals_.size(); ++i) {
    uv_signal_init(loop_, &signals_[i]);
    signals_[i].data = this;
  }
  handles_open_ = true;
  // Before the Screen: ncurses installs its own SIGINT/SIGTERM/SIGWINCH
  // handlers only where none is set.
  for (size_t i = 0; i < signals_.size(); ++i) {
    uv_signal_start(
        &signals_[i], [](uv_signal_t* s, int signum) { static_cast<App*>(s->data)->on_signal(signum); },
        kSignals[i]);
  }
  if (!screen_.begin(error)) {
    quit(1);
    return false;
  }
  stdin_flags_ = fcntl(STDIN_FILENO, F_GETFL);
  const int r = uv_poll_init(loop_, &stdin_poll_, STDIN_FILENO);
  if (stdin_flags_ >= 0) fcntl(STDIN_FILENO, F_SETFL, stdin_flags_);  // see app.h: stdin stays blocking
  if (r != 0) {
    *error = std::string("cannot watch stdin: ") + uv_strerror(r);
    quit(1);
    return false;
  }
  poll_open_ = true;
  stdin_poll_.data = this;
  uv_poll_start(&stdin_poll_, UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int status, int events) {
    static_cast<App*>(p->data)->on_stdin(status, events);
  });
  uv_timer_start(
      &tick_timer_,
      [](uv_timer_t* t) {
        App* a = static_cast<App*>(t->data);
        if (a->client_->state() == client::State::Ready) a->client_->ping();
        a->request_redraw();
      },
      kPingIntervalMs, kPingIntervalMs);
  wire_callbacks();
  connect();
  draw_now();
  return true;
}

void App::finish() {
  client_.reset();
  if (stdin_flags_ >= 0) fcntl(STDIN_FILENO, F_SETFL, stdin_flags_);
}

void App::quit(int code) {
  if (quitting_) return;
  quitting_ = true;
  exit_code_ = code;
  if (client_) client_->close();  // a no-op when not connected
  if (handles_open_) {
    handles_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&redraw_timer_), nullptr);
    for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  }
  if (poll_open_) {
    poll_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&stdin_poll_), nullptr);
  }
  screen_.end();
}

void App::connect() {
  model_.phase = Phase::Connecting;
  model_.have_welcome = false;
  model_.reconnect_attempt = 0;
  const int r = client_->connect(opts_.host.c_str(), opts_.port);
  if (r != 0) {
    model_.phase = Phase::Disconnected;
    model_.last_error = std::string("connect: ") + uv_strerror(r);
  }
}

void App::queue() {
  const int r = client_->queue_join();
  if (r != 0) {
    model_.last_error = std::string("queue: ") + uv_strerror(r);
    return;
  }
  model_.phase = Phase::Queued;
  model_.queued_at_ms = uv_now(loop_);
  model_.queued_players = 0;
}

void App::wire_callbacks() {
  client::Callbacks& cb = client_->callbacks();
  cb.on_welcome = [this](const proto::Welcome& w) {
    model_.have_welcome = true;
    model_.worker_index = w.worker_index();
    model_.rating = w.rating();
    model_.reconnect_attempt = 0;
    if (!w.resumed()) {
      model_.notice.clear();
      queue();
    } else {
      model_.notice = fmt_text("resumed on worker %u", unsigned(w.worker_index()));
      if (w.match_id() != 0 && w.match_id() != model_.match_id) {
        model_.phase = Phase::InMatch;  // a match we have not seen: MatchFound follows
        game_.reset();                  // and names its game; until then nothing is sent
      } else if (w.match_id() == 0 && model_.phase == Phase::InMatch) {
        model_.phase = Phase::MatchOver;  // it ended while we were away; MatchEnd was lost
        model_.end_reason = "ended while reconnecting";
        model_.results.clear();
      } else if (model_.phase == Phase::Queued) {
        asked_queue_status_ = client_->queue_status() == 0;  // was the ticket kept?
      }
    }
    request_redraw();
  };
  cb.on_pong = [this](uint32_t rtt_us, uint32_t) {
    model_.ping_us = rtt_us;
    request_redraw();
  };
  cb.on_queue_status = [this](const proto::QueueStatus& q) {
    model_.queued_players = q.queued_players();
    if (asked_queue_status_) {
      asked_queue_status_ = false;
      if (model_.phase == Phase::Queued && q.state() == proto::QueueState::Idle) queue();
    }
    request_redraw();
  };
  cb.on_match_found = [this](const proto::MatchFound& m) {
    if (m.match_id() != 0 && m.match_id() == model_.match_id &&
        (model_.phase == Phase::InMatch || model_.phase == Phase::MatchOver)) {
      return;  // again after a resume: nothing new
    }
    model_.phase = Phase::InMatch;
    model_.match_id = m.match_id();
    model_.your_slot = m.your_slot();
    model_.tick_rate_hz = m.tick_rate_hz();
    model_.max_input_bytes = m.max_input_bytes();
    model_.game = m.game() != nullptr ? sanitize_name(m.game()->string_view(), kMaxParamChars) : "?";
    model_.game_version =
        m.game_version() != nullptr && m.game_version()->size() > 0 ? sanitize_name(m.game_version()->string_view()) : "";
    model_.params.clear();
    if (const auto* params = m.params()) {
      for (const proto::GameParam* p : *params) {
        if (p == nullptr || p->key() == nullptr || model_.params.size() >= kMaxParams) continue;
        model_.params.push_back(Param{sanitize_name(p->key()->string_view(), kMaxParamChars),
                                      p->value() != nullptr ? sanitize_name(p->value()->string_view(), kMaxParamChars) : ""});
      }
    }
    model_.seats = {};
    if (const auto* players = m.players()) {
      for (const proto::PlayerInfo* p : *players) {
        if (p == nullptr || p->slot() >= kMaxSeats) continue;
        Seat& s = model_.seats[p->slot()];
        s.present = true;
        s.player_id = p->player_id();
        s.rating = p->rating();
        s.name = p->name() != nullptr ? sanitize_name(p->name()->string_view()) : "?";
      }
    }
    model_.results.clear();
    model_.end_reason.clear();
    model_.end_detail.clear();
    game_ = make_game_ui(model_.game);
    if (game_ == nullptr) {
      model_.unsupported = "this client cannot play \"" + model_.game + "\" (it knows " + known_games() + ")";
    } else {
      model_.unsupported.clear();
      game_->start(model_);
    }
    request_redraw();
  };
  cb.on_snapshot = [this](const client::World& w) { on_snapshot(w); };
  cb.on_match_end = [this](const proto::MatchEnd& m) {
    model_.phase = Phase::MatchOver;
    ++model_.matches_played;
    model_.end_reason = end_reason_text(m.reason());
    model_.end_detail = game_ != nullptr ? game_->end_detail(m.detail())
                        : m.detail() != 0 ? fmt_text("detail %u", unsigned(m.detail()))
                                          : "";
    if (game_ != nullptr) game_->stop();
    model_.results.clear();
    if (const auto* results = m.results()) {
      for (const proto::PlayerResult* r : *results) {
        if (r == nullptr || model_.results.size() >= kMaxResults) continue;
        ResultRow row;
        row.slot = r->slot();
        row.place = r->place();
        row.score = r->score();
        row.rating_before = r->rating_before();
        row.rating_after = r->rating_after();
        row.name = row.slot < kMaxSeats && model_.seats[row.slot].present ? model_.seats[row.slot].name : "?";
        model_.results.push_back(std::move(row));
      }
    }
    std::stable_sort(model_.results.begin(), model_.results.end(), [](const ResultRow& a, const ResultRow& b) {
      return a.place != b.place ? a.place < b.place : a.slot < b.slot;
    });
    request_redraw();
  };
  cb.on_error = [this](proto::ErrorCode code, std::string_view text, bool fatal) {
    const char* name = proto::EnumNameErrorCode(code);
    std::string s = (name != nullptr && *name != '\0') ? name : fmt_text("code %u", unsigned(code));
    if (!text.empty()) s += ": " + std::string(text);
    if (fatal) s += " (fatal)";
    model_.last_error = sanitize_name(s, kMaxErrorChars);
    request_redraw();
  };
  cb.on_server_shutdown = [this](const proto::ServerShutdown& s) {
    std::string text = "server shutting down";
    if (s.text() != nullptr && s.text()->size() > 0 && s.text()->string_view() != text)
      text += ": " + std::string(s.text()->string_view());
    model_.notice = sanitize_name(text, kMaxErrorChars);
    request_redraw();
  };
  cb.on_reconnecting = [this](uint32_t attempt, uint32_t, int reason) {
    model_.reconnect_attempt = attempt;
    // Keep "server shutting down" when that is why.
    if (attempt == 1 && model_.notice.rfind("server shutting down", 0) != 0)
      model_.notice = "connection lost: " + close_reason(reason, *client_);
    request_redraw();
  };
  cb.on_closed = [this](int reason) {
    if (quitting_) return;
    model_.phase = Phase::Disconnected;
    model_.reconnect_attempt = 0;
    model_.have_welcome = false;
    if (reason != 0) model_.last_error = close_reason(reason, *client_);
    request_redraw();
  };
}

std::string App::close_reason(int reason, const client::Client& c) {
  if (reason == 0) return "closed";
  if (reason == UV_EOF) return "the server closed the connection";
  if (reason == client::kClosedDecodeError) return std::string("bad frame from the server: ") + proto::to_string(c.decode_error());
  return uv_strerror(reason);
}

void App::on_snapshot(const client::World& w) {
  if (model_.phase == Phase::InMatch && game_ != nullptr) {
    model_.world = &w;
    game_->on_snapshot(*client_, model_);
    model_.world = nullptr;
  }
  request_redraw();
}

void App::on_command(Command c) {
  switch (c) {
    case Command::Up:
    case Command::Down:
    case Command::Left:
    case Command::Right:
    case Command::Stop:
    case Command::Action:
    case Command::Enter:
      if (model_.phase == Phase::InMatch && game_ != nullptr) {
        model_.world = client_->world();
        game_->on_key(c, *client_, model_);
        model_.world = nullptr;
      }
      break;
    case Command::Queue:
      if (model_.phase == Phase::MatchOver && client_->state() == client::State::Ready)
        queue();
      else if (model_.phase == Phase::Disconnected)
        connect();
      break;
    case Command::Quit: quit(0); return;
    case Command::Redraw: screen_.invalidate(); break;
    case Command::Resize:
    case Command::None: break;
  }
  request_redraw();
}

void App::on_stdin(int status, int events) {
  if (quitting_) return;
  if (status < 0 || (events & UV_DISCONNECT) != 0) {
    quit(1);  // the terminal is gone
    return;
  }
  int keys = 0;
  Command c = Command::None;
  while (!quitting_ && keys < kMaxKeysPerWake && screen_.next_key(&c)) {
    ++keys;
    on_command(c);
  }
  if (keys > 0) {
    empty_reads_ = 0;
  } else if (++empty_reads_ >= kMaxEmptyReads) {
    quit(1);  // readable again and again, never a key: end of file
  }
}

void App::on_signal(int signum) {
  if (signum == SIGWINCH) {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) screen_.resize(ws.ws_row, ws.ws_col);
    screen_.invalidate();
    request_redraw();
    return;
  }
  quit(128 + signum);
}

void App::request_redraw() {
  if (quitting_) return;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&redraw_timer_))) return;  // one is due
  const uint64_t now = uv_now(loop_);
  const uint64_t due = last_draw_ms_ + kMinRedrawMs;
  if (now >= due) {
    draw_now();
    return;
  }
  uv_timer_start(
      &redraw_timer_, [](uv_timer_t* t) { static_cast<App*>(t->data)->draw_now(); }, due - now, 0);
}

void App::draw_now() {
  if (quitting_ || !screen_.active()) return;
  last_draw_ms_ = uv_now(loop_);
  model_.now_ms = last_draw_ms_;
  const bool matchy = model_.phase == Phase::InMatch || model_.phase == Phase::MatchOver;
  model_.world = matchy ? client_->world() : nullptr;
  screen_.draw(model_, game_.get());
  model_.world = nullptr;
}

}  // namespace skirmish::terminal
