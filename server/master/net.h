// Small socket helpers shared by the roles that listen.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace skirmish::net {

// Binds and listens `tcp` (already uv_tcp_init'ed) on host:port; port 0 lets
// the OS pick. On success returns 0 and sets bound_port; else a libuv error.
int listen_tcp(uv_tcp_t* tcp, const std::string& host, uint16_t port, int backlog,
               uv_connection_cb cb, uint16_t* bound_port);

// A non-blocking, close-on-exec listening socket without libuv (the master
// accepts on it itself, see master.h): host:port, port 0 lets the OS pick.
// Returns 0 and sets *fd and *bound_port, or a negative errno (a libuv
// error code on Linux, for uv_strerror).
int listen_raw(const std::string& host, uint16_t port, int backlog, int* fd, uint16_t* bound_port);
// The port a bound socket listens on (0 if unknown).
uint16_t local_port(int fd);

// Takes over a socket that is already bound and listening (inherited across
// exec by a binary upgrade): uv_tcp_open, listen again (same backlog
// semantics), and reads back the port.
int listen_inherited(uv_tcp_t* tcp, int fd, int backlog, uv_connection_cb cb, uint16_t* bound_port);

}  // namespace skirmish::net
