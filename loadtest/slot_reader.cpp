// SlotReader (slot_reader.h): an epoll set of one shard's bot sockets,
// drained when the shard says so.
#include "loadtest/slot_reader.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace skirmish::loadtest {

namespace {
constexpr int kBatch = 256;  // events per epoll_wait
}

SlotReader::~SlotReader() {
  if (ep_ >= 0) ::close(ep_);
}

bool SlotReader::init(std::function<void(uint32_t)> read, uint32_t max_events) {
  read_ = std::move(read);
  max_events_ = std::max<uint32_t>(1, max_events);
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  return ep_ >= 0;
}

bool SlotReader::on_readable(uv_loop_t* loop) {
  poll_ = new uv_poll_t;
  poll_->data = this;
  if (uv_poll_init(loop, poll_, ep_) != 0) {
    delete poll_;
    poll_ = nullptr;
    return false;
  }
  // An epoll fd is readable while any member is ready.
  uv_poll_start(poll_, UV_READABLE, [](uv_poll_t* p, int status, int) {
    if (status == 0 && p->data != nullptr) {
      auto* r = static_cast<SlotReader*>(p->data);
      r->drain(r->max_events_);
    }
  });
  return true;
}

void SlotReader::add(int fd, uint32_t index) {
  if (ep_ < 0 || fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = index;
  if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST) ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

uint32_t SlotReader::drain(uint32_t max_events) {
  if (ep_ < 0) return 0;
  ++drains_;
  epoll_event evs[kBatch];
  uint32_t done = 0;
  // Bounded: at most ceil(max_events / kBatch) + 1 rounds; a short round
  // means nothing else was ready.
  for (uint32_t round = 0; done < max_events && round <= max_events / kBatch; ++round) {
    const int want = int(std::min<uint32_t>(kBatch, max_events - done));
    const int n = ::epoll_wait(ep_, evs, want, 0);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) read_(evs[i].data.u32);
    done += uint32_t(n);
    if (n < want) break;
  }
  return done;
}

void SlotReader::close() {
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  // The fd stays open until the destructor: the poll handle may still hold
  // it until its close callback has run.
}

}  // namespace skirmish::loadtest
