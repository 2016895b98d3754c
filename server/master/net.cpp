#include "master/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace skirmish::net {

namespace {
int bound_port_of(uv_tcp_t* tcp, uint16_t* bound_port) {
  sockaddr_storage got{};
  int len = sizeof got;
  if (int r = uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&got), &len)) return r;
  *bound_port = ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  return 0;
}
}  // namespace

int listen_raw(const std::string& host, uint16_t port, int backlog, int* fd, uint16_t* bound_port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof *a6;
  } else {
    return -EINVAL;
  }
  const int s = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(s, backlog) != 0) {
    const int err = errno;
    close(s);
    return -err;
  }
  *fd = s;
  *bound_port = local_port(s);
  return 0;
}

uint16_t local_port(int fd) {
  sockaddr_storage got{};
  socklen_t len = sizeof got;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) != 0) return 0;
  return ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
}

int listen_inherited(uv_tcp_t* tcp, int fd, int backlog, uv_connection_cb cb, uint16_t* bound_port) {
  if (int r = uv_tcp_open(tcp, fd)) return r;
  if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), backlog, cb)) return r;
  return bound_port_of(tcp, bound_port);
}

int listen_tcp(uv_tcp_t* tcp, const std::string& host, uint16_t port, int backlog,
               uv_connection_cb cb, uint16_t* bound_port) {
  sockaddr_storage addr{};
  int r = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (r != 0) r = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (r != 0) return r;
  if ((r = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&addr), 0)) != 0) return r;
  if ((r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), backlog, cb)) != 0) return r;
  sockaddr_storage got{};
  int len = sizeof got;
  if ((r = uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&got), &len)) != 0) return r;
  *bound_port = ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  return 0;
}

}  // namespace skirmish::net
