#include "tests/support/test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace skirmish::test {

using namespace proto;

TestClient::~TestClient() { close(); }

bool TestClient::connect(uint16_t port, const char* host, const char* source, int rcvbuf) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (source != nullptr) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    inet_pton(AF_INET, source, &s.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&s), sizeof s) != 0) {
      close();
      return false;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host, &a.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close();
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  closed_ = false;
  dec_ = FrameDecoder(DecodeLimits{.max_frame_bytes = 1 << 20});
  ready_.clear();
  return true;
}

void TestClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool TestClient::send_raw(std::span<const uint8_t> bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += size_t(n);
  }
  return true;
}

bool TestClient::send_hello(const std::string& name, ProtocolVersion v, const std::string& auth_token) {
  auto& b = enc.builder();
  return send_frame(enc.finish(CreateHelloDirect(b, v, name.c_str(), auth_token.empty() ? nullptr : auth_token.c_str())));
}

bool TestClient::send_ping(uint32_t nonce) {
  auto& b = enc.builder();
  return send_frame(enc.finish(CreatePing(b, 1, nonce)));
}

std::optional<std::vector<uint8_t>> TestClient::recv(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ready_.empty()) {
    if (fd_ < 0 || closed_) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, int(left.count()));
    if (r <= 0) continue;
    alignas(8) uint8_t buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      break;
    }
    auto e = dec_.feed(buf, size_t(n), [&](const Frame& f) {
      ready_.emplace_back(f.body.begin(), f.body.end());
      return true;
    });
    if (e != DecodeError::None) return std::nullopt;
  }
  if (ready_.empty()) return std::nullopt;
  auto m = std::move(ready_.front());
  ready_.erase(ready_.begin());
  return m;
}

std::optional<std::vector<uint8_t>> TestClient::recv_type(Message type, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = recv(left);
    if (!m) return std::nullopt;
    if (envelope(*m)->msg_type() == type) return m;
  }
}

bool TestClient::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!recv(left) && !closed_ && std::chrono::steady_clock::now() >= deadline) return false;
  }
  return true;
}

std::string http_get(uint16_t port, const std::string& target) {
  TestClient c;
  if (!c.connect(port)) return "";
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send_raw({reinterpret_cast<const uint8_t*>(req.data()), req.size()});
  std::string out;
  char buf[4096];
  pollfd p{c.fd(), POLLIN, 0};
  while (poll(&p, 1, 5000) > 0) {
    ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

}  // namespace skirmish::test
