#include "master/admin.h"

#include <cstring>

#include "master/net.h"

namespace skirmish::admin {

namespace {

constexpr size_t kMaxHead = 2048;
constexpr uint64_t kRequestTimeoutMs = 5000;

struct Conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write_req;
  AdminServer* server;
  const Handler* handler;
  char head[kMaxHead];
  size_t len = 0;
  std::string reply;
  int open_handles = 2;
};

void conn_closed(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  if (--c->open_handles == 0) delete c;
}

void conn_close(Conn* c) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), conn_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), conn_closed);
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
  }
  return "Error";
}

void respond(Conn* c, const Response& r) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->reply = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
             "\r\nContent-Type: " + r.content_type +
             "\r\nContent-Length: " + std::to_string(r.body.size()) +
             "\r\nConnection: close\r\n\r\n" + r.body;
  uv_buf_t b = uv_buf_init(c->reply.data(), c->reply.size());
  c->write_req.data = c;
  if (uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1,
               [](uv_write_t* req, int) { conn_close(static_cast<Conn*>(req->data)); }) != 0)
    conn_close(c);
}

void on_read(uv_stream_t* st, ssize_t n, const uv_buf_t*) {
  auto* c = static_cast<Conn*>(st->data);
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += size_t(n);
  std::string_view head(c->head, c->len);
  if (head.find("\r\n\r\n") == std::string_view::npos) {
    if (c->len == kMaxHead) respond(c, {400, "text/plain", "request head too large\n"});
    return;
  }
  // Request line: METHOD SP TARGET SP VERSION
  auto line = head.substr(0, head.find("\r\n"));
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == line.npos ? 0 : sp1 + 1);
  if (sp1 == line.npos || sp2 == line.npos || line.substr(sp2 + 1, 5) != "HTTP/") {
    respond(c, {400, "text/plain", "bad request line\n"});
    return;
  }
  if (line.substr(0, sp1) != "GET") {
    respond(c, {405, "text/plain", "only GET\n"});
    return;
  }
  respond(c, (*c->handler)(std::string(line.substr(sp1 + 1, sp2 - sp1 - 1))));
}

}  // namespace

int AdminServer::listen(const std::string& host, uint16_t port, uint16_t* bound_port) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  open_ = true;
  return net::listen_tcp(&tcp_, host, port, 64, on_connection, bound_port);
}

int AdminServer::listen_fd(int fd, uint16_t* bound_port) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  open_ = true;
  return net::listen_inherited(&tcp_, fd, 64, on_connection, bound_port);
}

int AdminServer::fd() const {
  uv_os_fd_t fd = -1;
  if (!open_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return -1;
  return fd;
}

void AdminServer::close() {
  if (open_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  open_ = false;
}

void AdminServer::on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* self = static_cast<AdminServer*>(server->data);
  auto* c = new Conn();
  c->server = self;
  c->handler = &self->handler_;
  uv_tcp_init(self->loop_, &c->tcp);
  uv_timer_init(self->loop_, &c->timer);
  c->tcp.data = c->timer.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, [](uv_timer_t* t) { conn_close(static_cast<Conn*>(t->data)); },
                 kRequestTimeoutMs, 0);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* cc = static_cast<Conn*>(h->data);
        *buf = uv_buf_init(cc->head + cc->len, unsigned(kMaxHead - cc->len));
      },
      on_read);
}

}  // namespace skirmish::admin
