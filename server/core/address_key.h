// The key the per-address connection cap counts by: an IPv4 address, or an
// IPv6 /64 (one subscriber's prefix; an attacker holds a whole /64, so
// counting single v6 addresses would cap nothing). A v4-mapped v6 address
// counts as its v4 address. Keys of the two families cannot collide: a v4
// key is below 2^33 and a v6 /64 there would be inside ::/31 (reserved).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace skirmish::core {

inline uint64_t address_key(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (uint64_t(1) << 32) | ntohl(a->sin_addr.s_addr);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    const uint8_t* b = a->sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      uint32_t v4;
      std::memcpy(&v4, b + 12, 4);
      return (uint64_t(1) << 32) | ntohl(v4);
    }
    uint64_t prefix = 0;
    for (int i = 0; i < 8; ++i) prefix = prefix << 8 | b[i];
    return prefix;
  }
  return 0;  // unknown family: counted together (never reached for TCP)
}

}  // namespace skirmish::core
