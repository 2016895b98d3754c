// The acceptor (acceptor.h): accept, the caps, shedding at EMFILE, pick a
// worker, hand the socket off.
#include "master/acceptor.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "core/address_key.h"
#include "shm/atomic_field.h"

namespace skirmish::master {

namespace {

constexpr int kAcceptBatch = 64;          // connections accepted per wake-up, at most
constexpr uint64_t kAcceptPauseMs = 100;  // out of descriptors with no spare
// Hand-offs of one socket at most: each failure is a worker's death, and
// a client that met three in a row is better told (ServerFull) than held.
constexpr uint8_t kMaxHandoffTries = 3;
// How soon the master lets go of its copies of sockets its workers took.
// A worker takes a socket within a loop iteration, so a held socket costs
// a descriptor for about this long.
constexpr uint64_t kReleaseEveryMs = 10;

void close_tcp(uv_tcp_t* t) {
  uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

template <class T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

struct Acceptor::Handoff {
  uv_write_t req;
  uv_tcp_t* client;
  Acceptor* acceptor;
  uv_pipe_t* pipe;  // the lane's pipe it went on (a lane gone or restarted has another)
  uint32_t worker;
  uint64_t seq;  // the worker's nth socket (Lane::open_by_seq)
  uint64_t key;
  uint8_t tries;
};

Acceptor::Acceptor(uv_loop_t* loop, const config::Config& cfg, shm::Segment& seg, MasterStats& stats, uint32_t base)
    : loop_(loop), cfg_(cfg), seg_(seg), stats_(stats), base_(base), lanes_(seg.worker_slots()) {
  uv_timer_init(loop_, &pause_timer_);
  pause_timer_.data = this;
  uv_timer_init(loop_, &release_timer_);
  release_timer_.data = this;
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Acceptor::~Acceptor() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

bool Acceptor::start(int fd) {
  listen_fd_ = fd;
  if (uv_poll_init(loop_, &poll_, fd) != 0) return false;
  poll_.data = this;
  poll_start();
  listening_ = true;
  return true;
}

void Acceptor::poll_start() {
  uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status == 0) static_cast<Acceptor*>(h->data)->on_readable();
  });
}

void Acceptor::stop() {
  if (!listening_) return;
  listening_ = false;
  uv_timer_stop(&pause_timer_);
  // Closing our descriptor leaves the socket listening wherever another
  // copy is open (a binary upgrade's new master).
  uv_close(H(&poll_), nullptr);
  ::close(listen_fd_);
  listen_fd_ = -1;
}

void Acceptor::close() {
  stop();
  if (closed_) return;
  closed_ = true;
  uv_close(H(&pause_timer_), nullptr);
  uv_close(H(&release_timer_), nullptr);
  for (Lane& l : lanes_) {
    for (Held& h : l.held) close_tcp(h.client);
    l.held.clear();
  }
}

size_t Acceptor::held() const {
  size_t n = 0;
  for (const Lane& l : lanes_) n += l.held.size();
  return n;
}

void Acceptor::release_taken(uint32_t index) {
  Lane& l = lanes_[index];
  if (l.held.empty()) return;
  const uint64_t taken = shm::shared_load(seg_.process(index).handoffs_taken);
  while (!l.held.empty() && l.held.front().seq < taken) {
    close_tcp(l.held.front().client);
    l.held.pop_front();
  }
}

void Acceptor::add_worker(uint32_t index, uv_pipe_t* pipe) {
  Lane& l = lanes_[index];
  l.pipe = pipe;
  l.handed = 0;
  l.carry_len = 0;
  l.next_seq = 0;
  l.open_by_seq.clear();
  // The worker reports the address key of each connection it closes.
  pipe->data = this;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(pipe),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* a = static_cast<Acceptor*>(h->data);
        *buf = uv_buf_init(a->report_buf_, sizeof a->report_buf_);
      },
      [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
        auto* a = static_cast<Acceptor*>(st->data);
        for (uint32_t i = 0; i < a->lanes_.size(); ++i)
          if (a->lanes_[i].pipe == reinterpret_cast<uv_pipe_t*>(st)) a->on_worker_report(i, n, buf->base);
      });
}

void Acceptor::remove_worker(uint32_t index) {
  Lane& l = lanes_[index];
  if (l.pipe == nullptr && l.held.empty()) return;  // told twice (EOF, then SIGCHLD)
  l.pipe = nullptr;
  for (auto& [seq, key] : l.open_by_seq) count_address(key, -1);
  l.open_by_seq.clear();
  l.next_seq = 0;
  l.carry_len = 0;
  // What it took died with it; what is still in its pipe goes elsewhere.
  // (Writes still in flight come back through on_handed, cancelled.)
  release_taken(index);
  std::deque<Held> orphans;
  orphans.swap(l.held);
  if (!orphans.empty())
    spdlog::warn("worker {} gone with {} connection(s) not yet taken: handing them to another worker", index,
                 orphans.size());
  for (Held& h : orphans) {
    ++stats_.handoff_failed;
    hand(h.client, h.key, h.tries);
  }
}

void Acceptor::on_readable() {
  // A bounded batch per wake-up: the loop must also run handoff writes,
  // signals and the admin port under a connect storm.
  for (int n = 0; n < kAcceptBatch && listening_; ++n) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ++stats_.accepted;
      admit(fd, peer);
      continue;
    }
    switch (errno) {
      case EAGAIN:
        return;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        continue;
      case EMFILE:
      case ENFILE:
        shed_without_descriptors();
        continue;
      default:
        spdlog::warn("accept: {}", strerror(errno));
        return;
    }
  }
}

void Acceptor::shed_without_descriptors() {
  // Out of descriptors with connections waiting: level-triggered polling
  // would spin. Free the spare, take one connection, refuse it, take the
  // spare back.
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ++stats_.accepted;
      refuse_fd(fd, int(proto::ErrorCode::ServerFull), "server out of file descriptors", stats_.refused_fd_limit,
                "the master is out of file descriptors");
    }
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserve_fd_ >= 0) return;
  }
  // No spare to be had: stop accepting for a moment (the kernel queues).
  ++stats_.accept_pauses;
  if (stats_.accept_pauses % 100 == 1)
    spdlog::error("out of file descriptors with no spare: accepting paused for {} ms ({} times)", kAcceptPauseMs,
                  stats_.accept_pauses);
  uv_poll_stop(&poll_);
  uv_timer_start(
      &pause_timer_,
      [](uv_timer_t* t) {
        auto* a = static_cast<Acceptor*>(t->data);
        if (a->reserve_fd_ < 0) a->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (a->listening_) a->poll_start();
      },
      kAcceptPauseMs, 0);
}

void Acceptor::admit(int fd, const sockaddr_storage& peer) {
  // Every check comes before any allocation for the connection.
  uint64_t open = 0;
  for (uint32_t i = 0; i < seg_.worker_slots(); ++i) {
    open += shm::shared_load(seg_.process(i).counters.connections_open);
    if (own_worker(i)) {
      const uint64_t accepted = shm::shared_load(seg_.process(i).counters.connections_accepted);
      if (lanes_[i].handed > accepted) open += lanes_[i].handed - accepted;
    }
  }
  if (open >= cfg_.max_connections) {
    refuse_fd(fd, int(proto::ErrorCode::ServerFull), "server full", stats_.refused_full,
              "max_connections reached");
    return;
  }
  const uint64_t key = core::address_key(peer);
  if (auto it = per_address_.find(key); it != per_address_.end() && it->second >= cfg_.max_connections_per_ip) {
    refuse_fd(fd, int(proto::ErrorCode::TooManyConnections), "too many connections from your address",
              stats_.refused_per_address, "max_connections_per_ip reached");
    return;
  }
  const int w = pick_worker();
  if (w < 0) {
    refuse_fd(fd, int(proto::ErrorCode::ServerFull), "no worker available", stats_.refused_no_worker,
              "no worker up with descriptors to spare");
    return;
  }
  auto* client = new uv_tcp_t;
  uv_tcp_init(loop_, client);
  if (uv_tcp_open(client, fd) != 0) {
    ::close(fd);
    close_tcp(client);
    return;
  }
  hand(client, key, 0, w);
}

void Acceptor::hand(uv_tcp_t* client, uint64_t key, uint8_t tries, int w) {
  if (w < 0) w = tries < kMaxHandoffTries ? pick_worker() : -1;
  if (w < 0) {
    if (tries > 0) ++stats_.refused_no_worker;
    refuse_handle(client);
    return;
  }
  Lane& lane = lanes_[w];
  auto* h = new Handoff{{}, client, this, lane.pipe, uint32_t(w), lane.next_seq, key, uint8_t(tries + 1)};
  h->req.data = h;
  static char byte = 'c';  // uv_write2 needs at least one byte beside the fd
  uv_buf_t buf = uv_buf_init(&byte, 1);
  const int r = uv_write2(&h->req, reinterpret_cast<uv_stream_t*>(lane.pipe), &buf, 1,
                          reinterpret_cast<uv_stream_t*>(client), [](uv_write_t* req, int st) {
                            auto* hh = static_cast<Handoff*>(req->data);
                            hh->acceptor->on_handed(hh, st);
                          });
  if (r != 0) {
    // The pipe refused at once (closing, or broken): the worker is gone.
    ++stats_.handoff_failed;
    delete h;
    if (on_lost) on_lost(uint32_t(w), uv_strerror(r));
    if (lanes_[w].pipe != nullptr) remove_worker(uint32_t(w));  // no owner told us
    hand(client, key, uint8_t(tries + 1));
    return;
  }
  ++stats_.handed_off;
  lane.open_by_seq.emplace(lane.next_seq++, key);
  ++lane.handed;
  count_address(key, +1);
}

void Acceptor::on_handed(Handoff* h, int status) {
  const uint32_t w = h->worker;
  Lane& l = lanes_[w];
  const bool same_lane = l.pipe == h->pipe && h->pipe != nullptr;
  if (status == 0 && same_lane) {
    // Written into the worker's pipe: hold our copy until it is taken.
    l.held.push_back(Held{h->seq, h->client, h->key, h->tries});
    release_taken(w);
    if (!l.held.empty() && !uv_is_active(H(&release_timer_)))
      uv_timer_start(
          &release_timer_,
          [](uv_timer_t* t) {
            auto* a = static_cast<Acceptor*>(t->data);
            bool any = false;
            for (uint32_t i = 0; i < a->lanes_.size(); ++i) {
              a->release_taken(i);
              any |= !a->lanes_[i].held.empty();
            }
            if (!any) uv_timer_stop(t);
          },
          kReleaseEveryMs, kReleaseEveryMs);
    delete h;
    return;
  }
  // Failed (the worker's end is closed: EPIPE; or the pipe was closed under
  // the write: ECANCELED), or written to a lane that is gone since: the
  // socket never reached a live worker.
  ++stats_.handoff_failed;
  if (same_lane) {
    if (l.handed > 0) --l.handed;
    if (auto it = l.open_by_seq.find(h->seq); it != l.open_by_seq.end()) {
      count_address(it->second, -1);
      l.open_by_seq.erase(it);
    }
    SPDLOG_DEBUG("handoff to worker {} failed: {}", w, uv_strerror(status));
    if (on_lost) on_lost(w, uv_strerror(status));
    if (l.pipe == h->pipe) remove_worker(w);  // no owner told us
  }
  uv_tcp_t* client = h->client;
  const uint64_t key = h->key;
  const uint8_t tries = h->tries;
  delete h;
  if (closed_) {
    close_tcp(client);
    return;
  }
  hand(client, key, tries);
}

void Acceptor::refuse_handle(uv_tcp_t* client) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(H(client), &fd) == 0) {
    auto frame = proto::encode_error(refuse_enc_, proto::ErrorCode::ServerFull, true, "no worker available");
    [[maybe_unused]] ssize_t n = send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  close_tcp(client);
  if (stats_.refused_no_worker % 1000 == 1)
    spdlog::warn("connection refused: no worker up to take it ({} so far)", stats_.refused_no_worker);
}

void Acceptor::refuse_fd(int fd, int code, const char* text, uint64_t& counter, const char* reason) {
  // One small frame into an empty socket buffer: it goes or it does not;
  // the master never queues for a client, and allocates nothing here.
  auto frame = proto::encode_error(refuse_enc_, proto::ErrorCode(code), true, text);
  [[maybe_unused]] ssize_t n = send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(fd);
  if (++counter % 1000 == 1) spdlog::warn("connection refused: {} ({} so far)", reason, counter);
}

void Acceptor::count_address(uint64_t key, int delta) {
  if (delta > 0) {
    ++per_address_[key];
    return;
  }
  auto it = per_address_.find(key);
  if (it == per_address_.end()) return;
  if (--it->second == 0) per_address_.erase(it);
}

void Acceptor::on_worker_report(uint32_t index, ssize_t nread, const char* data) {
  if (nread == 0) return;
  if (nread < 0) {
    // EOF (or a reset): the worker is gone, or going. Out of the hand-off
    // set now, not at SIGCHLD: the owner marks it down.
    if (on_lost) on_lost(index, nread == UV_EOF ? "end of file on its pipe" : uv_strerror(int(nread)));
    if (lanes_[index].pipe != nullptr) remove_worker(index);
    return;
  }
  Lane& l = lanes_[index];
  size_t i = 0;
  const size_t n = size_t(nread);
  while (i < n) {
    const size_t take = std::min<size_t>(8 - l.carry_len, n - i);
    std::memcpy(l.carry.data() + l.carry_len, data + i, take);
    l.carry_len = uint8_t(l.carry_len + take);
    i += take;
    if (l.carry_len == 8) {
      uint64_t seq;
      std::memcpy(&seq, l.carry.data(), 8);
      if (auto it = l.open_by_seq.find(seq); it != l.open_by_seq.end()) {
        count_address(it->second, -1);
        l.open_by_seq.erase(it);
      }
      l.carry_len = 0;
    }
  }
}

int Acceptor::pick_worker() {
  int best = -1;
  uint64_t best_load = UINT64_MAX;
  const uint32_t n = cfg_.workers;
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = base_ + (rr_ + k) % n;
    const shm::ProcessRow& row = seg_.process(i);
    // A Starting worker is eligible: the socket waits in its IPC pipe until
    // its loop runs. Down and Draining ones are not.
    auto st = shm::shared_load(row.state);
    if (lanes_[i].pipe == nullptr || (st != shm::ProcessState::Up && st != shm::ProcessState::Starting)) continue;
    uint64_t accepted = shm::shared_load(row.counters.connections_accepted);
    uint64_t inflight = lanes_[i].handed > accepted ? lanes_[i].handed - accepted : 0;
    uint64_t load = shm::shared_load(row.counters.connections_open) + inflight;
    if (load >= shm::shared_load(row.fd_capacity)) continue;  // no descriptors to spare
    if (load < best_load) {
      best_load = load;
      best = int(i);
    }
  }
  rr_ = (rr_ + 1) % n;
  return best;
}

}  // namespace skirmish::master
