#include "worker/worker.h"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/process.h"
#include "match/match_store.h"
#include "shm/atomic_field.h"
#include "shm/histogram_field.h"
#include "store/player_store.h"

namespace skirmish::worker {

using namespace skirmish::proto;
using shm::shared_load;
using shm::shared_store;

// Sweep period for deadlines: fine enough for the smallest timeout (100 ms
// handshake) to fire within a quarter of itself.
static constexpr uint64_t kSweepMs = 50;
// A closing session whose peer does not read its last frames is cut after
// this long.
static constexpr int64_t kCloseLingerMs = 1000;
// A drain's deadline ends the matches ticked here; a session seated in a
// match ticked by another worker gets its MatchEnd from there, which ends
// its own at about the same time. This long after the deadline, whoever
// is still waiting is sent on. kDeadlineGraceMs + kCloseLingerMs stays
// below the master's kill at drain_timeout_ms + 2 s.
static constexpr int64_t kDeadlineGraceMs = 300;
// Beyond this capacity an empty write buffer is given back, so a burst
// does not pin memory on an idle connection.
static constexpr size_t kKeepBufferBytes = 16 * 1024;

struct Callbacks {
  static void alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* s = static_cast<Session*>(h->data);
    Worker* w = s->worker;
    // One read buffer per worker: on_read consumes it completely before
    // the next read, copying only a split frame into the session.
    if (w->read_buf_busy_) {
      *buf = uv_buf_init(nullptr, 0);  // libuv reports UV_ENOBUFS; never happens
      return;
    }
    w->read_buf_busy_ = true;
    *buf = uv_buf_init(reinterpret_cast<char*>(w->read_buf_.data()), w->read_buf_.size());
  }
  static void read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
    auto* s = static_cast<Session*>(st->data);
    s->worker->read_buf_busy_ = false;
    s->worker->on_read(s, nread, buf);
  }
  static void write_done(uv_write_t* req, int status) {
    auto* s = static_cast<Session*>(req->data);
    Worker* w = s->worker;
    s->writing = false;
    s->inflight.clear();
    // A backlog's buffer goes back to the heap once written, as `out`'s
    // does in flush(): memory follows the queue, not its worst moment.
    if (s->inflight.capacity() > kKeepBufferBytes) std::vector<uint8_t>().swap(s->inflight);
    if (s->state == SessionState::Closed) return;
    if (status < 0) {
      w->close_now(s);
      return;
    }
    if (!s->out.empty()) {
      w->flush(s);
    } else {
      w->on_flushed(s);
      if (s->state == SessionState::Closing) w->close_now(s);
    }
  }
  static void closed(uv_handle_t* h) {
    auto* s = static_cast<Session*>(h->data);
    s->worker->forget(s);
    delete s;
  }
  // The tick's timer only marks it due; the step runs in the check phase,
  // after this pass has read every socket that was ready, so an input that
  // arrived before the tick is in it (libuv runs timers before I/O). The
  // idle handle keeps that pass's poll from blocking (timeout 0).
  static void tick_due(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    w->tick_due_ = true;
    uv_idle_start(&w->tick_idle_, [](uv_idle_t*) {});
  }
  static void check(uv_check_t* c) {
    auto* w = static_cast<Worker*>(c->data);
    if (w->tick_due_) {
      w->tick_due_ = false;
      uv_idle_stop(&w->tick_idle_);
      w->tick();
    }
    w->flush_dirty();  // this tick's snapshots among them: one burst
    w->flush_reports();
  }
  static void sweep(uv_timer_t* t) { static_cast<Worker*>(t->data)->sweep(); }
  static void readable(void* w, void* s) { static_cast<Worker*>(w)->read_ready(static_cast<Session*>(s)); }
};

Worker::Worker(uv_loop_t* loop, const config::Config& cfg, uint16_t index, int64_t start_ms,
               shm::Segment* seg, const module::Game* game, const auth::JwtVerifier* jwt)
    : loop_(loop),
      cfg_(cfg),
      index_(index),
      start_ms_(start_ms),
      seg_(seg),
      enc_(4096),
      error_enc_(256),
      game_(game),
      jwt_(jwt) {
  init_view_scratch();
  open_store();
  if (seg_ != nullptr) row_ = &seg_->process(index_);
  uv_timer_init(loop_, &tick_timer_);
  tick_timer_.data = this;
  uv_idle_init(loop_, &tick_idle_);
  tick_idle_.data = this;
  uv_check_init(loop_, &flush_check_);
  flush_check_.data = this;
  uv_check_start(&flush_check_, Callbacks::check);
  uv_timer_init(loop_, &sweep_timer_);
  sweep_timer_.data = this;
  uv_timer_start(&sweep_timer_, Callbacks::sweep, kSweepMs, kSweepMs);
  if (!read_set_.open(loop_, Callbacks::readable, this))
    spdlog::warn("read set: epoll: {}; reading sockets through libuv", std::strerror(errno));
}

Worker::~Worker() = default;  // out of line: store::PlayerStore is complete here

int64_t Worker::now_ms() const { return fake_now_ms_ >= 0 ? fake_now_ms_ : int64_t(uv_now(loop_)); }

void Worker::apply_config(const config::Config& cfg) { cfg_ = cfg; }

bool Worker::accept_from(uv_stream_t* server) { return accept_session(server, UINT64_MAX); }

bool Worker::accept_handoff(uv_stream_t* ipc) { return accept_session(ipc, take_handoff_seq()); }

bool Worker::accept_session(uv_stream_t* server, uint64_t seq) {
  auto* s = new Session();
  s->worker = this;
  s->id = next_session_id_++;
  s->node.owner = s;
  uv_tcp_init(loop_, &s->tcp);
  s->tcp.data = s;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&s->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s->tcp), Callbacks::closed);
    if (seq != UINT64_MAX) report_closed(seq);
    return false;
  }
  s->handoff_seq = seq;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&s->tcp), &fd) == 0) s->fd = fd;
  uv_tcp_nodelay(&s->tcp, 1);
  if (cfg_.socket_send_buffer_bytes != 0) {
    // A client that never reads would otherwise pin up to tcp_wmem's
    // maximum (4 MiB) of kernel memory before write_queue_bytes applies.
    int size = int(cfg_.socket_send_buffer_bytes);
    uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(&s->tcp), &size);
  }
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&s->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    char ip[40] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
    snprintf(s->peer, sizeof s->peer, "%s:%d", ip, port);
  }
  s->decoder = FrameDecoder(DecodeLimits{.max_frame_bytes = cfg_.max_frame_bytes_handshake});
  s->tokens = cfg_.message_burst;
  s->tokens_at_ms = now_ms();
  set_list(s, handshake_list_, now_ms());
  ++sessions_;
  ++stats_.connections_open;
  ++stats_.connections_accepted;
  if (row_ != nullptr) {
    // Live counters (shm/counters.h), per connection, not per frame: the
    // master's least-connections pick reads these.
    shm::shared_add(row_->counters.connections_open, uint64_t(1));
    shm::shared_add(row_->counters.connections_accepted, uint64_t(1));
  }
  SPDLOG_DEBUG("session {} from {}", s->id, s->peer);
  if (leaving_ == Leave::Drain) {
    // Crossed the Shutdown in flight (the master stopped handing off):
    // told at once, never read.
    send_on(s);
    return true;
  }
  start_reading(s);
  return true;
}

void Worker::start_reading(Session* s) {
  // recv(2) from the read set (worker/read_set.h); libuv's read(2) where
  // the set cannot take the socket.
  s->in_read_set = read_set_.add(s->fd, s);
  if (!s->in_read_set) uv_read_start(reinterpret_cast<uv_stream_t*>(&s->tcp), Callbacks::alloc, Callbacks::read);
}

void Worker::stop_reading(Session* s) {
  if (s->in_read_set) {
    read_set_.remove(s->fd);
    s->in_read_set = false;
  } else {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&s->tcp));
  }
}

void Worker::read_ready(Session* s) {
  // A session closed earlier in this batch (its fd left the set, the
  // Session lives until its close callback): nothing to read.
  if (!s->in_read_set) return;
  ssize_t n = ::recv(s->fd, read_buf_.data(), read_buf_.size(), MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    n = uv_translate_sys_error(errno);
  } else if (n == 0) {
    n = UV_EOF;
  }
  const uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(read_buf_.data()), n > 0 ? unsigned(n) : 0);
  on_read(s, n, &b);
  // A full buffer may have left more behind: the set is edge-triggered, so
  // ask for the socket again at the next drain (not now: one read per
  // session per pass). A short read took everything there was; whatever
  // comes later is a new edge.
  if (size_t(n) == read_buf_.size() && s->in_read_set && !read_set_.rearm(s->fd, s)) close_now(s);
}

void Worker::on_pass(bool quantum) {
  // On the quantum the pass reads the set; off it libuv wakes for it.
  read_set_.set_polled(!quantum);
  if (quantum) read_set_.drain();
}

void Worker::set_list(Session* s, ListNode& list, int64_t since) {
  s->node.unlink();
  s->since_ms = since;
  list.push_back(&s->node);
}

void Worker::on_read(Session* s, ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  if (nread < 0) {
    // EOF or reset: nothing more will be read; drop what is queued.
    close_now(s);
    return;
  }
  if (s->state != SessionState::Handshake && s->state != SessionState::Ready) return;
  stats_.bytes_in += uint64_t(nread);
  auto* data = reinterpret_cast<const uint8_t*>(buf->base);
  DecodeError e = s->decoder.feed(data, size_t(nread), [&](const Frame& f) { return on_frame(s, f); });
  if (e != DecodeError::None) {
    ++stats_.decode_errors;
    SPDLOG_DEBUG("session {} ({}): {}", s->id, s->peer, to_string(e));
    send_error(s, to_error_code(e), true, to_string(e));
  }
}

bool Worker::take_token(Session* s, int64_t now) {
  double rate = cfg_.messages_per_second;
  s->tokens = std::min<double>(cfg_.message_burst, s->tokens + double(now - s->tokens_at_ms) * rate / 1000.0);
  s->tokens_at_ms = now;
  if (s->tokens < 1.0) return false;
  s->tokens -= 1.0;
  return true;
}

bool Worker::on_frame(Session* s, const Frame& f) {
  if (s->state != SessionState::Handshake && s->state != SessionState::Ready) return false;
  ++stats_.frames_in;
  int64_t now = now_ms();
  if (!take_token(s, now)) {
    ++stats_.rate_limited;
    send_error(s, ErrorCode::RateLimited, true, "too many messages");
    return false;
  }
  if (s->state == SessionState::Ready) set_list(s, idle_list_, now);

  switch (f.type) {
    case Message::Ping:
      on_ping(s, f.envelope->msg_as_Ping());
      return true;
    case Message::Hello:
      if (s->state != SessionState::Handshake || s->loading) break;
      return on_hello(s, f.envelope->msg_as_Hello());
    case Message::Resume:
      if (s->state != SessionState::Handshake || s->loading) break;
      return on_resume(s, f.envelope->msg_as_Resume());
    case Message::QueueJoin:
    case Message::QueueLeave:
    case Message::QueueStatus:
    case Message::Input:
      if (s->state != SessionState::Ready) break;
      if (seg_ == nullptr) {
        send_error(s, ErrorCode::UnexpectedMessage, false, "no game on this server");
        return true;
      }
      if (f.type == Message::QueueJoin) on_queue_join(s, f.envelope->msg_as_QueueJoin());
      else if (f.type == Message::QueueLeave) on_queue_leave(s);
      else if (f.type == Message::QueueStatus) send_queue_status(s);
      else on_input(s, f.envelope->msg_as_Input());
      return s->state == SessionState::Ready;
    default:
      if (s->state == SessionState::Ready) {
        // A message only the server sends (Welcome, Snapshot, ...).
        send_error(s, ErrorCode::UnexpectedMessage, false, "not a client message");
        return true;
      }
      break;
  }
  send_error(s, ErrorCode::UnexpectedMessage, true,
             s->state == SessionState::Handshake ? "expected Hello or Resume" : "unexpected message");
  return false;
}


void Worker::on_ping(Session* s, const Ping* m) {
  auto& b = enc_.builder();
  auto p = CreatePong(b, m->client_time_us(), m->nonce(), uint32_t(core::monotonic_ms() - start_ms_));
  send(s, enc_.finish(p));
}

bool Worker::send(Session* s, std::span<const uint8_t> frame) {
  if (s->state == SessionState::Closed) return false;
  if (s->out.size() + s->inflight.size() + frame.size() > cfg_.write_queue_bytes) {
    // The client is not reading. Tell it once, without queueing behind what
    // it refuses to read, and close.
    ++stats_.slow_consumers;
    SPDLOG_DEBUG("session {} ({}): slow consumer, {} bytes queued", s->id, s->peer,
                 s->out.size() + s->inflight.size());
    s->out.clear();
    // Its own encoder: `frame` may live in enc_ and be sent to others next.
    auto err = encode_error(error_enc_, ErrorCode::SlowConsumer, true, "write queue full");
    if (!s->writing) try_send(s, err.data(), err.size());
    ++stats_.errors_by_code[size_t(ErrorCode::SlowConsumer)];
    close_now(s);
    return false;
  }
  s->out.insert(s->out.end(), frame.begin(), frame.end());
  ++stats_.frames_out;
  mark_dirty(s);
  return true;
}

void Worker::send_error(Session* s, ErrorCode code, bool fatal, std::string_view text) {
  if (s->state == SessionState::Closing || s->state == SessionState::Closed) return;
  if (size_t(code) < shm::kErrorCodeSlots) ++stats_.errors_by_code[size_t(code)];
  if (!send(s, encode_error(enc_, code, fatal, text))) return;
  if (fatal) begin_close(s);
}

void Worker::begin_close(Session* s) {
  if (s->state == SessionState::Closing || s->state == SessionState::Closed) return;
  s->state = SessionState::Closing;
  stop_reading(s);
  set_list(s, closing_list_, now_ms());
  if (s->out.empty() && !s->writing) close_now(s);
}

void Worker::close_now(Session* s) {
  if (s->state == SessionState::Closed) return;
  s->state = SessionState::Closed;
  s->node.unlink();
  --sessions_;
  --stats_.connections_open;
  ++stats_.connections_closed;
  release_player(s);
  if (s->handoff_seq != UINT64_MAX) report_closed(s->handoff_seq);
  if (row_ != nullptr) {
    shm::shared_sub(row_->counters.connections_open, uint64_t(1));
    shm::shared_add(row_->counters.connections_closed, uint64_t(1));
  }
  // Out of the read set before the fd closes (the master may still hold a
  // copy of it, and the set would keep it). Pending writes complete with
  // UV_ECANCELED before the close callback, so the Session outlives every
  // callback that names it.
  stop_reading(s);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->tcp), Callbacks::closed);
}

void Worker::release_player(Session* s) {
  if (seg_ == nullptr || s->player_wire == 0) return;
  by_player_.erase(s->player_wire);
  auto players = seg_->players();
  auto h = shm::from_wire(s->player_wire);
  s->player_wire = 0;
  if (!h) return;
  if (cfg_.resume_grace_ms == 0) {
    players.release(*h);
    return;
  }
  // Keep the seat for the resume grace; the coordinator frees it after.
  auto guard = players.lock();
  if (shm::PlayerRow* row = players.get(*h)) {
    row->disconnected_at_ms = core::monotonic_ms();
    row->worker = shm::kNoWorker;
    shm::shared_store(row->state, shm::PlayerState::Disconnected);
  }
}

void Worker::publish_stats(shm::ProcessRow& row) {
  stats_.matches_owned = owned_.size();
  shm::publish_counters(row.counters, stats_, shm::Keeper::Worker);
}

void Worker::mark_dirty(Session* s) {
  if (s->dirty) return;
  s->dirty = true;
  s->dirty_next = dirty_head_;
  dirty_head_ = s;
}

void Worker::report_closed(uint64_t seq) {
  if (report_ == nullptr) return;
  if (report_buf_.size() - report_off_ >= kMaxReportBytes) {
    // The master has not read for a long while: it over-counts this
    // address until this worker exits. Counted and logged, never silent.
    if (++stats_.close_reports_dropped % 1000 == 1)
      spdlog::warn("close reports to the master backed up: {} dropped", stats_.close_reports_dropped);
    return;
  }
  const auto* b = reinterpret_cast<const uint8_t*>(&seq);
  report_buf_.insert(report_buf_.end(), b, b + sizeof seq);
}

void Worker::flush_reports() {
  if (report_ == nullptr || report_off_ == report_buf_.size()) return;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(report_buf_.data() + report_off_),
                           unsigned(report_buf_.size() - report_off_));
  const int n = uv_try_write(report_, &b, 1);
  if (n > 0) report_off_ += size_t(n);
  if (report_off_ == report_buf_.size()) {
    report_buf_.clear();
    report_off_ = 0;
  }
}

void Worker::flush_dirty() {
  // Sessions closed this iteration are still allocated: close callbacks run
  // after the check phase.
  Session* s = dirty_head_;
  dirty_head_ = nullptr;
  while (s != nullptr) {
    Session* next = s->dirty_next;
    s->dirty = false;
    s->dirty_next = nullptr;
    if (s->state != SessionState::Closed) flush(s);
    s = next;
  }
}

// send(2) straight on the socket rather than uv_try_write: libuv writes
// with write(2)/writev(2), which go through the VFS layer (and a SIGPIPE
// mask dance) before reaching TCP; send with MSG_DONTWAIT | MSG_NOSIGNAL
// is the floor server's call, one per session per tick. Only used while no
// uv_write is in flight (libuv's queue is empty), so ordering holds.
// Returns the bytes taken, 0 when the kernel is full, -1 on a socket error.
ssize_t Worker::try_send(Session* s, const uint8_t* data, size_t len) {
  if (s->fd < 0) {  // not a socket libuv gave us an fd for: the portable path
    uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data)), unsigned(len));
    const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&s->tcp), &b, 1);
    return n >= 0 ? n : n == UV_EAGAIN ? 0 : -1;
  }
  for (;;) {
    const ssize_t n = ::send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == ENOTSOCK) {  // a pipe (the fuzz seam): libuv's write from now on
      s->fd = -1;
      return try_send(s, data, len);
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

void Worker::flush(Session* s) {
  if (s->writing || s->out.empty()) return;
  const ssize_t n = try_send(s, s->out.data(), s->out.size());
  if (n < 0) {
    close_now(s);
    return;
  }
  size_t done = size_t(n);
  stats_.bytes_out += done;
  if (done == s->out.size()) {
    s->out.clear();
    if (s->out.capacity() > kKeepBufferBytes) std::vector<uint8_t>().swap(s->out);
    on_flushed(s);
    if (s->state == SessionState::Closing) close_now(s);
    return;
  }
  // The kernel is full: hand the rest to libuv and keep appending to `out`.
  s->inflight.assign(s->out.begin() + ptrdiff_t(done), s->out.end());
  s->out.clear();
  stats_.bytes_out += s->inflight.size();
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(s->inflight.data()), s->inflight.size());
  s->write_req.data = s;
  s->writing = true;
  int r = uv_write(&s->write_req, reinterpret_cast<uv_stream_t*>(&s->tcp), &b, 1, Callbacks::write_done);
  if (r < 0) {
    s->writing = false;
    close_now(s);
  }
}

void Worker::sweep() {
  const int64_t now = now_ms();
  auto expire = [&](ListNode& list, int64_t timeout_ms, auto&& on_expired) {
    while (list.next != &list) {
      Session* s = list.next->owner;
      if (now - s->since_ms < timeout_ms) break;
      on_expired(s);
      // The handler moves it on (closing list) or closes it. One it could
      // not tell (already Closing in this list) is closed here: unlinked
      // but open, it would be in no list, never swept and never closed.
      if (s->node.prev == &list) close_now(s);
    }
  };
  expire(handshake_list_, cfg_.handshake_timeout_ms, [&](Session* s) {
    ++stats_.handshake_timeouts;
    send_error(s, ErrorCode::HandshakeTimeout, true, "handshake not completed in time");
  });
  expire(idle_list_, cfg_.idle_timeout_ms, [&](Session* s) {
    ++stats_.idle_timeouts;
    send_error(s, ErrorCode::IdleTimeout, true, "idle too long");
  });
  expire(closing_list_, kCloseLingerMs, [&](Session* s) { close_now(s); });
  sweep_leaving();
}

// ---------------------------------------------------------------- leaving
//
// A drain and a hand-over are one mechanism: the sessions with nothing to
// wait for leave at once, the seated ones right after their MatchEnd, and
// the matches this worker ticks play on. Why idle and queued sessions leave
// at once rather than stay until the end: the server will not start another
// match for them, and a client told now can find another server (or the
// restarted one) now instead of idling out the drain; what a production
// game server owes its players during a drain is the matches in progress,
// not the lobby.

size_t Worker::shutdown_all(uint32_t drain_ms) { return leave(Leave::Drain, drain_ms); }

size_t Worker::hand_over(uint32_t drain_ms) { return leave(Leave::HandOver, drain_ms); }

size_t Worker::leave(Leave how, uint32_t drain_ms) {
  if (leaving_ != Leave::No) return 0;
  leaving_ = how;
  leave_drain_ms_ = drain_ms;
  leave_deadline_ms_ = now_ms() + int64_t(drain_ms);
  return send_on_unseated();
}

bool Worker::left() const {
  if (leaving_ == Leave::No) return false;
  if (sessions_ == 0 && owned_.empty()) return true;
  const int64_t now = now_ms();
  if (leaving_ == Leave::HandOver) return now >= leave_deadline_ms_;
  return now >= leave_deadline_ms_ + kDeadlineGraceMs + kCloseLingerMs;
}

bool Worker::about_to_be_seated(const Session* s) {
  // The coordinator matched its ticket (or pointed the player at a match)
  // before it saw the drain: MatchFound is in this worker's mailbox or on
  // its way, and the match will be played, so the player waits for it.
  if (seg_ == nullptr || s->state != SessionState::Ready) return false;
  const shm::PlayerRow* p = seg_->players().get_wire(s->player_wire);
  if (p == nullptr) return false;
  if (match_state(shared_load(p->match)) == shm::MatchState::Running) return true;
  const shm::TicketRow* t = seg_->tickets().get_wire(shared_load(p->ticket));
  return t != nullptr && shared_load(t->state) == shm::TicketState::Matched;
}

size_t Worker::send_on_unseated() {
  // Collected first: send_on moves a session to the closing list.
  std::vector<Session*> leaving;
  auto collect = [&](ListNode& list) {
    for (ListNode* n = list.next; n != &list; n = n->next) {
      Session* s = n->owner;
      if (s->match_wire != 0) continue;  // seated: stays until its MatchEnd
      if (s->state == SessionState::Handshake) {
        // A hand-over lets it finish here (it then resumes by token on the
        // new generation); a drain has nothing to offer it.
        if (leaving_ == Leave::Drain) leaving.push_back(s);
        continue;
      }
      if (s->state == SessionState::Ready && !about_to_be_seated(s)) leaving.push_back(s);
    }
  };
  collect(handshake_list_);
  collect(idle_list_);
  for (Session* s : leaving) {
    if (leaving_ == Leave::Drain) cancel_ticket_for_shutdown(s);
    send_on(s);
  }
  return leaving.size();
}

void Worker::cancel_ticket_for_shutdown(Session* s) {
  if (seg_ == nullptr || s->state != SessionState::Ready) return;
  auto players = seg_->players();
  auto tickets = seg_->tickets();
  shm::PlayerRow* p = players.get_wire(s->player_wire);
  const uint32_t ticket = p == nullptr ? 0 : shared_load(p->ticket);
  if (ticket == 0) return;
  bool cancelled = false;
  {
    auto g = tickets.lock();
    shm::TicketRow* t = tickets.get_wire(ticket);
    if (t != nullptr && t->state == shm::TicketState::Waiting) {
      shared_store(t->state, shm::TicketState::Cancelled);
      cancelled = true;
    }
  }
  if (!cancelled) return;
  {
    auto g = players.lock();
    if (p->ticket == ticket) shared_store(p->ticket, uint32_t(0));
  }
  ++stats_.tickets_cancelled;
  post(seg_->coordinator_index(), shm::make_event(shm::EventType::TicketChanged, index_, ticket));
  ++stats_.errors_by_code[size_t(ErrorCode::ShuttingDown)];
  send(s, encode_error(leave_enc_, ErrorCode::ShuttingDown, false,
                       "matchmaking stopped: the server is shutting down; your ticket is cancelled"));
}

void Worker::send_on(Session* s) {
  if (s->state == SessionState::Closing || s->state == SessionState::Closed) return;
  // Its own encoder: callers may hold a frame in enc_ for other sessions.
  auto& b = leave_enc_.builder();
  const bool upgrade = leaving_ == Leave::HandOver;
  auto m = CreateServerShutdownDirect(b, leave_drain_ms_, 0,
                                      upgrade ? "server upgrading: resume on a new connection"
                                              : "server shutting down");
  if (send(s, leave_enc_.finish(m))) begin_close(s);
}

void Worker::sweep_leaving() {
  if (leaving_ == Leave::No) return;
  // Sessions whose match ended without a MatchEnd here (gone, or its
  // MatchFound never came), and handshakes that finished (a hand-over).
  send_on_unseated();
  if (leaving_ != Leave::Drain) return;
  const int64_t now = now_ms();
  if (!deadline_passed_ && now >= leave_deadline_ms_) {
    deadline_passed_ = true;
    const uint64_t before = stats_.matches_ended_at_deadline;
    end_owned_for_shutdown();
    if (const uint64_t n = stats_.matches_ended_at_deadline - before; n > 0)
      spdlog::info("drain deadline ({} ms): {} matches ended unfinished, no rating change", leave_drain_ms_, n);
  }
  if (deadline_passed_ && !grace_passed_ && now >= leave_deadline_ms_ + kDeadlineGraceMs) {
    // Seated in a match ticked by a worker that is gone: no MatchEnd will
    // come. Collected first: send_on moves a session to the closing list.
    grace_passed_ = true;
    std::vector<Session*> rest;
    for (ListNode* n = idle_list_.next; n != &idle_list_; n = n->next) rest.push_back(n->owner);
    for (Session* s : rest) send_on(s);
  }
}

void Worker::close_all() {
  while (closing_list_.next != &closing_list_) close_now(closing_list_.next->owner);
  for (ListNode* list : {&handshake_list_, &idle_list_})
    while (list->next != list) close_now(list->next->owner);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_idle_), nullptr);
  read_set_.close();
}

void Worker::arm_tick(uint64_t delay_ms) { uv_timer_start(&tick_timer_, Callbacks::tick_due, delay_ms, 0); }

}  // namespace skirmish::worker
