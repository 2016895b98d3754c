#include "client/lib/skirmish_client.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace skirmish::client {

using proto::DecodeError;
using proto::Frame;
using proto::Message;

namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
// Beyond this capacity a drained write buffer is given back, so one burst
// does not pin memory on each of thousands of idle bots.
constexpr size_t kKeepBufferBytes = 16 * 1024;

// One read buffer per thread, shared by every Client on it. libuv calls
// alloc_cb and then read_cb for one stream at a time, and read_cb decodes
// the chunk completely (copying only a split frame into the decoder) before
// the next alloc, so one buffer is enough. `busy` guards the assumption.
struct ReadScratch {
  alignas(8) uint8_t data[kReadBufferBytes];
  bool busy = false;
};

ReadScratch& read_scratch() {
  thread_local std::unique_ptr<ReadScratch> s = std::make_unique<ReadScratch>();
  return *s;
}

// One encoder per thread: a message is encoded and, before anything else
// can run, either written or copied into its connection's queue.
proto::FrameEncoder& encoder() {
  thread_local proto::FrameEncoder enc(256);
  return enc;
}

uint32_t now_us32() { return uint32_t(uv_hrtime() / 1000); }

}  // namespace

const char* to_string(State s) {
  switch (s) {
    case State::Idle: return "idle";
    case State::Connecting: return "connecting";
    case State::Handshaking: return "handshaking";
    case State::Ready: return "ready";
    case State::Closing: return "closing";
    case State::Closed: return "closed";
  }
  return "?";
}

// The socket and everything libuv may still touch after the Client is gone.
// Freed only from the handle's close callback; `owner` is null once the
// Client has been destroyed (or the connect failed synchronously).
struct Client::Conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  Client* owner = nullptr;
  int fd = -1;  // tcp's socket once connected (uv_fileno), for send(2) and recvmsg(2)
  std::vector<uint8_t> out;       // frames not yet handed to libuv
  std::vector<uint8_t> inflight;  // the buffer of the one outstanding uv_write
  size_t inflight_off = 0;        // bytes of `inflight` the kernel took before uv_write
  bool writing = false;
  bool closing = false;  // uv_close called
};

// The back-off timer of automatic resume; like Conn, freed by its close
// callback, with `owner` null once the Client is gone.
struct Client::RetryTimer {
  uv_timer_t t;
  Client* owner = nullptr;
};

// The C callbacks libuv calls; they forward to the owner while there is one.
struct ClientIo {
  static Client::Conn* conn(void* data) { return static_cast<Client::Conn*>(data); }

  static void connected(uv_connect_t* req, int status) {
    Client::Conn* c = conn(req->data);
    if (c->owner != nullptr) c->owner->on_connect(status);
  }
  static void alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    ReadScratch& s = read_scratch();
    if (s.busy) {  // never happens; libuv then reports UV_ENOBUFS
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    s.busy = true;
    *buf = uv_buf_init(reinterpret_cast<char*>(s.data), sizeof s.data);
  }
  static void read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
    ReadScratch& s = read_scratch();
    if (buf->base == reinterpret_cast<char*>(s.data)) s.busy = false;
    Client::Conn* c = conn(st->data);
    if (c->owner != nullptr) c->owner->on_read(nread, reinterpret_cast<const uint8_t*>(buf->base));
  }
  static void written(uv_write_t* req, int status) {
    Client::Conn* c = conn(req->data);
    c->writing = false;
    c->inflight.clear();
    c->inflight_off = 0;
    if (c->inflight.capacity() > kKeepBufferBytes) std::vector<uint8_t>().swap(c->inflight);
    if (c->owner != nullptr) c->owner->on_write_done(status);
  }
  static void closed(uv_handle_t* h) {
    Client::Conn* c = conn(h->data);
    Client* owner = c->owner;
    delete c;
    if (owner != nullptr) owner->on_handle_closed();
  }
  static void close_conn(Client::Conn* c) {
    if (c->closing) return;
    c->closing = true;
    // Pending write and connect requests complete with UV_ECANCELED before
    // `closed` runs, so the Conn outlives every callback that names it.
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), closed);
  }
};

Client::Client(uv_loop_t* loop, Options options, Callbacks callbacks)
    : loop_(loop),
      opts_(std::move(options)),
      cb_(std::move(callbacks)),
      decoder_(proto::DecodeLimits{.max_frame_bytes = opts_.max_frame_bytes}),
      history_(opts_.snapshot_history) {}

Client::~Client() {
  if (alive_ != nullptr) *alive_ = false;
  if (retry_ != nullptr) {
    retry_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&retry_->t),
             [](uv_handle_t* h) { delete reinterpret_cast<RetryTimer*>(h->data); });
    retry_ = nullptr;
  }
  if (conn_ != nullptr) {
    conn_->owner = nullptr;
    ClientIo::close_conn(conn_);
    conn_ = nullptr;
  }
}

int Client::connect(const char* ip, uint16_t port) {
  if (state_ != State::Idle && state_ != State::Closed) return UV_EBUSY;
  if (ip == nullptr) return UV_EINVAL;
  sockaddr_storage addr{};
  if (uv_ip4_addr(ip, port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(ip, port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
    return UV_EINVAL;
  auto* c = new Conn();
  int r = uv_tcp_init(loop_, &c->tcp);
  if (r != 0) {
    delete c;
    return r;
  }
  c->tcp.data = c;
  c->connect_req.data = c;
  c->write_req.data = c;
  r = uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&addr), ClientIo::connected);
  if (r != 0) {
    ClientIo::close_conn(c);  // no owner: freed quietly
    return r;
  }
  c->owner = this;
  conn_ = c;
  state_ = State::Connecting;
  close_reason_ = 0;
  peer_ip_ = ip;
  peer_port_ = port;
  resuming_ = false;
  user_closed_ = false;
  decoder_ = proto::FrameDecoder(proto::DecodeLimits{.max_frame_bytes = opts_.max_frame_bytes});
  player_id_ = 0;
  worker_index_ = 0;
  tick_rate_hz_ = 0;
  // The token, last input seq and snapshot history stay for resume();
  // hello() starts a new session and clears them.
  return 0;
}

void Client::close() {
  if (retry_ != nullptr && uv_is_active(reinterpret_cast<uv_handle_t*>(&retry_->t)) && !user_closed_) {
    // Waiting to reconnect: the connection is over now; on_closed(0) comes
    // from the loop, as every callback does.
    user_closed_ = true;
    uv_timer_start(&retry_->t, [](uv_timer_t* t) {
      if (auto* o = static_cast<RetryTimer*>(t->data)->owner) o->on_retry_timer();
    }, 0, 0);
    return;
  }
  user_closed_ = true;
  shut(0);
}

bool Client::schedule_reconnect(int reason) {
  const ReconnectOptions& ro = opts_.reconnect;
  const uint64_t now = uv_now(loop_);
  if (attempt_ == 0) dropped_ms_ = now;
  if (attempt_ >= ro.max_tries || now - dropped_ms_ >= ro.max_ms) {
    ++stats_.reconnect_give_ups;
    attempt_ = 0;
    return false;
  }
  uint64_t delay = uint64_t(ro.initial_delay_ms) << std::min<uint32_t>(attempt_, 20);
  if (delay > ro.max_delay_ms) delay = ro.max_delay_ms;
  // Jitter to 50..150 %: bots dropped together do not return together.
  jitter_ ^= jitter_ << 13;
  jitter_ ^= jitter_ >> 7;
  jitter_ ^= jitter_ << 17;
  delay = delay / 2 + (delay > 0 ? jitter_ % (delay + 1) : 0);
  ++attempt_;
  if (retry_ == nullptr) {
    retry_ = new RetryTimer();
    retry_->owner = this;
    uv_timer_init(loop_, &retry_->t);
    retry_->t.data = retry_;
  }
  uv_timer_start(&retry_->t, [](uv_timer_t* t) {
    if (auto* o = static_cast<RetryTimer*>(t->data)->owner) o->on_retry_timer();
  }, delay, 0);
  if (cb_.on_reconnecting) {
    auto cb = cb_.on_reconnecting;  // it may destroy this Client
    cb(attempt_, uint32_t(delay), reason);
  }
  return true;
}

void Client::on_retry_timer() {
  if (user_closed_) {
    attempt_ = 0;
    if (cb_.on_closed) {
      auto cb = cb_.on_closed;
      cb(0);
    }
    return;
  }
  ++stats_.reconnect_attempts;
  const std::string ip = peer_ip_;
  int r = connect(ip.c_str(), peer_port_);
  if (r == 0) {
    resuming_ = true;
    return;
  }
  if (!schedule_reconnect(r) && cb_.on_closed) {
    auto cb = cb_.on_closed;
    cb(r);
  }
}

void Client::shut(int reason) {
  if (state_ == State::Idle || state_ == State::Closing || state_ == State::Closed) return;
  state_ = State::Closing;
  close_reason_ = reason;
  if (conn_ != nullptr) ClientIo::close_conn(conn_);
}

void Client::on_handle_closed() {
  conn_ = nullptr;
  state_ = State::Closed;
  const bool had_session = (token_[0] | token_[1] | token_[2] | token_[3]) != 0;
  if (opts_.reconnect.enabled && !user_closed_ && had_session && !no_resume_ && schedule_reconnect(close_reason_))
    return;
  attempt_ = 0;
  if (cb_.on_closed) {
    // A copy: the callback may destroy this Client or replace on_closed.
    auto cb = cb_.on_closed;
    cb(close_reason_);
  }
}

void Client::on_connect(int status) {
  if (state_ != State::Connecting) return;  // close() came first (UV_ECANCELED)
  if (status == 0) {
    uv_os_fd_t sock = -1;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&conn_->tcp), &sock) == 0) conn_->fd = sock;
    if (opts_.tcp_nodelay) uv_tcp_nodelay(&conn_->tcp, 1);
    if (!opts_.poll_reads) {
      status = uv_read_start(reinterpret_cast<uv_stream_t*>(&conn_->tcp), ClientIo::alloc, ClientIo::read);
    } else if (opts_.rx_timestamps) {
      // Software RX timestamps: the kernel stamps each skb as it enters the
      // stack (on loopback, when the peer's write reached netif_rx), and TCP
      // hands the newest one of a read back in an SCM_TIMESTAMPING cmsg.
      const int fd = this->fd();
      const int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
      rx_ts_on_ = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0;
    }
  }
  if (status != 0) {
    shut(status);
  } else {
    state_ = State::Handshaking;
    if (resuming_) resume();        // automatic resume: the token, not Hello
    else if (opts_.auto_hello) hello();  // a failure closes; on_closed says why
    if (!open()) status = close_reason_;
  }
  // Last: the callback may close, send, or destroy this Client.
  if (cb_.on_connected) cb_.on_connected(status);
}

void Client::on_read(ssize_t nread, const uint8_t* data) {
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {         // UV_EOF: the server closed; else a socket error
    shut(int(nread));
    return;
  }
  if (!open()) return;
  deliver(data, size_t(nread));
}

bool Client::deliver(const uint8_t* data, size_t n) {
  stats_.bytes_in += uint64_t(n);
  ++stats_.reads;
  read_snapshots_ = 0;
  bool alive = true;
  alive_ = &alive;
  corked_ = true;
  DecodeError e = decoder_.feed(data, n, [&](const Frame& f) {
    dispatch(f);
    // `this` may be gone after a callback; only then is `alive` false.
    return alive && open();
  });
  if (!alive) return false;
  alive_ = nullptr;
  corked_ = false;
  if (read_snapshots_ > 1) ++stats_.reads_multi_snapshot;
  if (e != DecodeError::None) {
    shut(kClosedDecodeError);
    return true;
  }
  if (open()) flush();  // replies of the whole batch in one write
  return true;
}

int Client::fd() const {
  if (conn_ == nullptr || conn_->closing) return -1;
  return conn_->fd;
}

// What the kernel takes of [data, data+len) now: bytes, or a libuv error
// (UV_EAGAIN: nothing). send(2) on the socket, not uv_try_write: that one
// is write(2), through the VFS (vfs_write, fdget_pos: 6 % of the load
// tester's samples at 1,000 bots), for the same TCP work. MSG_NOSIGNAL: a
// reset peer is an EPIPE here, not a SIGPIPE.
int Client::try_send(const uint8_t* data, size_t len) {
  Conn& c = *conn_;
  if (c.fd < 0) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data)), unsigned(len));
    return uv_try_write(reinterpret_cast<uv_stream_t*>(&c.tcp), &b, 1);
  }
  for (;;) {
    const ssize_t n = ::send(c.fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return int(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return UV_EAGAIN;
    return uv_translate_sys_error(errno);
  }
}

int Client::poll_read(uint32_t max_reads) {
  if (!opts_.poll_reads || !open()) return 0;
  const int fd = this->fd();
  if (fd < 0) return 0;
  ReadScratch& s = read_scratch();
  if (s.busy) return UV_EBUSY;  // frames of another read are being decoded from the buffer
  int total = 0;
  for (uint32_t i = 0; i < max_reads; ++i) {
    iovec iov{s.data, sizeof s.data};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(scm_timestamping))];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (rx_ts_on_) {
      mh.msg_control = ctrl;
      mh.msg_controllen = sizeof ctrl;
    }
    const ssize_t n = ::recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      const int err = uv_translate_sys_error(errno);
      shut(err);
      return err;
    }
    if (n == 0) {
      shut(UV_EOF);
      return UV_EOF;
    }
    rx_realtime_ns_ = 0;
    if (rx_ts_on_) {
      for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING) {
          scm_timestamping ts;
          std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
          rx_realtime_ns_ = uint64_t(ts.ts[0].tv_sec) * 1000000000ull + uint64_t(ts.ts[0].tv_nsec);
        }
      if (rx_realtime_ns_ == 0) ++stats_.reads_without_rx_time;
    }
    total += int(n);
    s.busy = true;  // the frames are decoded in place from the shared buffer
    const bool alive = deliver(s.data, size_t(n));
    s.busy = false;
    if (!alive) return total;  // a callback destroyed this Client
    rx_realtime_ns_ = 0;
    if (!open() || size_t(n) < sizeof s.data) break;  // a short read: nothing was left
  }
  return total;
}

void Client::dispatch(const Frame& f) {
  ++stats_.frames_in;
  const proto::Envelope* env = f.envelope;
  switch (f.type) {
    case Message::Welcome: {
      const proto::Welcome* m = env->msg_as_Welcome();
      if (const proto::SessionToken* t = m->token()) token_ = {t->w0(), t->w1(), t->w2(), t->w3()};
      player_id_ = m->player_id();
      worker_index_ = m->worker_index();
      tick_rate_hz_ = m->tick_rate_hz();
      welcome_ms_ = uv_now(loop_);
      state_ = State::Ready;
      if (m->resumed()) {
        ++stats_.resumes;
        attempt_ = 0;
        if (m->last_input_seq() > last_seq_) last_seq_ = m->last_input_seq();  // seqs only grow
      }
      resuming_ = false;
      if (cb_.on_welcome) cb_.on_welcome(*m);
      return;
    }
    case Message::Pong: {
      const proto::Pong* m = env->msg_as_Pong();
      // Both ends are the low 32 bits of microseconds: wraps cleanly.
      const uint32_t rtt_us = now_us32() - m->client_time_us();
      if (cb_.on_pong) cb_.on_pong(rtt_us, m->nonce());
      return;
    }
    case Message::QueueStatus:
      if (cb_.on_queue_status) cb_.on_queue_status(*env->msg_as_QueueStatus());
      return;
    case Message::MatchFound: {
      history_.reset();  // a new match: no old world is a valid base
      const proto::MatchFound* m = env->msg_as_MatchFound();
      slot_ = m->your_slot();
      max_input_bytes_ = m->max_input_bytes();
      if (cb_.on_match_found) cb_.on_match_found(*m);
      return;
    }
    case Message::Snapshot:
      ++read_snapshots_;
      on_snapshot_msg(*env->msg_as_Snapshot(), f.body.size() + proto::kFrameHeaderBytes);
      return;
    case Message::MatchEnd:
      if (cb_.on_match_end) cb_.on_match_end(*env->msg_as_MatchEnd());
      return;
    case Message::Error: {
      const proto::Error* m = env->msg_as_Error();
      const size_t code = size_t(m->code());
      ++stats_.errors;
      if (m->fatal() && m->code() == proto::ErrorCode::VersionMismatch) no_resume_ = true;
      if (code < kErrorCodeCount)
        ++stats_.errors_by_code[code];
      else
        ++stats_.errors_unknown_code;
      std::string_view text;
      if (const flatbuffers::String* t = m->text()) text = std::string_view(t->c_str(), t->size());
      if (cb_.on_error) cb_.on_error(m->code(), text, m->fatal());
      return;
    }
    case Message::ServerShutdown:
      if (cb_.on_server_shutdown) cb_.on_server_shutdown(*env->msg_as_ServerShutdown());
      return;
    default:  // Hello, Ping, QueueJoin, ...: only a client sends these
      ++stats_.unexpected_messages;
      return;
  }
}

void Client::on_snapshot_msg(const proto::Snapshot& s, size_t frame_bytes) {
  switch (history_.apply(s)) {
    case ApplyResult::Full:
      ++stats_.snapshots_full;
      stats_.snapshot_bytes_full += frame_bytes;
      break;
    case ApplyResult::Delta:
      ++stats_.snapshots_delta;
      stats_.snapshot_bytes_delta += frame_bytes;
      break;
    case ApplyResult::MissingBase: ++stats_.snapshots_missing_base; return;
    case ApplyResult::BadDelta: ++stats_.snapshots_bad_delta; return;
    case ApplyResult::Stale: ++stats_.snapshots_stale; return;
  }
  if (cb_.on_snapshot) cb_.on_snapshot(*history_.newest());
}

// ---- sending ----

size_t Client::write_queue_bytes() const {
  if (conn_ == nullptr) return 0;
  return conn_->out.size() + (conn_->writing ? conn_->inflight.size() - conn_->inflight_off : 0);
}

int Client::send_frame(const uint8_t* data, size_t len) {
  if (!open()) return UV_ENOTCONN;
  Conn& c = *conn_;
  if (write_queue_bytes() + len > opts_.max_write_queue_bytes) {
    ++stats_.write_queue_full;
    return UV_ENOBUFS;
  }
  ++stats_.frames_out;
  stats_.bytes_out += len;
  if (!c.writing && c.out.empty() && !corked_) {
    // Nothing queued: straight from the encoder to the kernel, no copy.
    int n = try_send(data, len);
    if (n >= 0 && size_t(n) == len) return 0;
    if (n < 0 && n != UV_EAGAIN) {
      shut(n);
      return n;
    }
    const size_t done = n > 0 ? size_t(n) : 0;
    c.out.insert(c.out.end(), data + done, data + len);
    return start_write(0);  // the kernel is full: no second try_write
  }
  c.out.insert(c.out.end(), data, data + len);
  if (c.writing || corked_) return 0;  // coalesced behind the write or the batch
  return flush();
}

int Client::flush() {
  Conn& c = *conn_;
  if (c.writing || c.out.empty()) return 0;
  int n = try_send(c.out.data(), c.out.size());
  if (n < 0 && n != UV_EAGAIN) {
    shut(n);
    return n;
  }
  const size_t done = n > 0 ? size_t(n) : 0;
  if (done == c.out.size()) {
    c.out.clear();
    if (c.out.capacity() > kKeepBufferBytes) std::vector<uint8_t>().swap(c.out);
    return 0;
  }
  return start_write(done);
}

int Client::start_write(size_t done) {
  Conn& c = *conn_;
  // `out` becomes the write's buffer (no copy); the old, empty inflight
  // buffer takes the frames that come meanwhile.
  c.inflight.swap(c.out);
  c.out.clear();
  c.inflight_off = done;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(c.inflight.data() + done), unsigned(c.inflight.size() - done));
  c.writing = true;
  int r = uv_write(&c.write_req, reinterpret_cast<uv_stream_t*>(&c.tcp), &b, 1, ClientIo::written);
  if (r < 0) {
    c.writing = false;
    c.inflight.clear();
    c.inflight_off = 0;
    shut(r);
    return r;
  }
  return 0;
}

void Client::on_write_done(int status) {
  if (!open()) return;  // closing: UV_ECANCELED or a late completion
  if (status < 0) {
    shut(status);
    return;
  }
  flush();
}

int Client::hello() {
  auto& enc = encoder();
  auto& b = enc.builder();
  auto name = b.CreateString(opts_.name);
  auto token = opts_.auth_token.empty() ? 0 : b.CreateString(opts_.auth_token);
  auto frame = enc.finish(proto::CreateHello(b, proto::ProtocolVersion(opts_.protocol_version), name, token));
  int r = send_frame(frame.data(), frame.size());
  if (r == 0) {
    // A new session: inputs count from 1 again and no world is a base.
    last_seq_ = 0;
    history_.reset();
  }
  return r;
}

int Client::ping(uint32_t* nonce_out) {
  const uint32_t nonce = ping_nonce_ + 1;
  auto& enc = encoder();
  auto& b = enc.builder();
  auto frame = enc.finish(proto::CreatePing(b, now_us32(), nonce));
  const int r = send_frame(frame.data(), frame.size());
  if (r == 0) {  // a refused ping uses no nonce
    ping_nonce_ = nonce;
    if (nonce_out != nullptr) *nonce_out = nonce;
  }
  return r;
}

int Client::queue_join(uint8_t mode, uint32_t party_key, uint8_t party_size) {
  auto& enc = encoder();
  auto& b = enc.builder();
  auto frame = enc.finish(proto::CreateQueueJoin(b, mode, party_key, party_size));
  return send_frame(frame.data(), frame.size());
}

int Client::queue_leave() {
  auto& enc = encoder();
  auto& b = enc.builder();
  auto frame = enc.finish(proto::CreateQueueLeave(b));
  return send_frame(frame.data(), frame.size());
}

int Client::queue_status() {
  auto& enc = encoder();
  auto& b = enc.builder();
  auto frame = enc.finish(proto::CreateQueueStatus(b));
  return send_frame(frame.data(), frame.size());
}

int Client::send_input(const uint8_t* data, size_t len) {
  const uint32_t seq = last_seq_ + 1;
  uint32_t client_tick = 0;
  if (tick_rate_hz_ != 0) client_tick = uint32_t((uv_now(loop_) - welcome_ms_) * tick_rate_hz_ / 1000);
  auto& enc = encoder();
  auto& b = enc.builder();
  auto bytes = b.CreateVector(data, len);
  auto frame = enc.finish(proto::CreateInput(b, seq, client_tick, acked_tick(), bytes));
  int r = send_frame(frame.data(), frame.size());
  if (r == 0) last_seq_ = seq;  // seq stays gap-free on the wire
  return r;
}

int Client::resume() {
  auto& enc = encoder();
  auto& b = enc.builder();
  const proto::SessionToken tok(token_[0], token_[1], token_[2], token_[3]);
  auto frame = enc.finish(
      proto::CreateResume(b, proto::ProtocolVersion(opts_.protocol_version), &tok, acked_tick()));
  return send_frame(frame.data(), frame.size());
}

}  // namespace skirmish::client
