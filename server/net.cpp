#include "net.h"

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
