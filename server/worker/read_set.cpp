#include "worker/read_set.h"

#include <unistd.h>

#include <cerrno>

namespace skirmish::worker {

ReadSet::~ReadSet() {
  // close() ran (Worker::close_all); a set never opened has nothing.
  if (ep_ >= 0) ::close(ep_);
}

bool ReadSet::open(uv_loop_t* loop, Ready cb, void* ctx) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return false;
  if (uv_poll_init(loop, &poll_, ep_) != 0) {
    ::close(ep_);
    ep_ = -1;
    return false;
  }
  cb_ = cb;
  ctx_ = ctx;
  poll_.data = this;
  set_polled(true);
  return true;
}

void ReadSet::set_polled(bool on) {
  if (ep_ < 0 || on == polled_) return;
  polled_ = on;
  if (!on) {
    uv_poll_stop(&poll_);
    return;
  }
  uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int status, int) {
    if (status == 0) static_cast<ReadSet*>(p->data)->drain();
  });
}

bool ReadSet::add(int fd, void* ptr) {
  if (ep_ < 0 || fd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;  // see the header
  ev.data.ptr = ptr;
  return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool ReadSet::rearm(int fd, void* ptr) {
  if (ep_ < 0 || fd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = ptr;
  return epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void ReadSet::remove(int fd) {
  if (ep_ >= 0 && fd >= 0) (void)epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
}

void ReadSet::drain() {
  if (ep_ < 0) return;
  for (int batch = 0; batch < kMaxBatches; ++batch) {
    const int n = epoll_wait(ep_, evs_, kBatch, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) cb_(ctx_, evs_[i].data.ptr);
    if (n < kBatch) return;
  }
}

void ReadSet::close() {
  if (ep_ < 0) return;
  // libuv stops watching the fd in uv_close itself, so it may be closed now.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  ::close(ep_);
  ep_ = -1;
  polled_ = false;
}

}  // namespace skirmish::worker
