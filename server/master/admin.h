// The admin HTTP port: /healthz, /readyz, /metrics (Prometheus text),
// /status (JSON); the master answers them (master/metrics.h). One request per connection, HTTP/1.0
// style: the request head is capped at kMaxHead bytes and must arrive
// within the handshake timeout; anything else is 400 and a close.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace skirmish::admin {

struct Response {
  int status;
  std::string content_type;
  std::string body;
};

// Answers one request target ("/healthz"); the server fills it in.
using Handler = std::function<Response(const std::string& target)>;

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}
  // Returns 0 or a libuv error; sets bound_port.
  int listen(const std::string& host, uint16_t port, uint16_t* bound_port);
  // Serves an already bound and listening socket (binary upgrade).
  int listen_fd(int fd, uint16_t* bound_port);
  int fd() const;  // the listening socket, or -1
  void close();

 private:
  static void on_connection(uv_stream_t* server, int status);
  uv_loop_t* loop_;
  Handler handler_;
  uv_tcp_t tcp_;
  bool open_ = false;
};

}  // namespace skirmish::admin
