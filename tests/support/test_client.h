// A blocking test client over a real socket: every receive has a deadline.
// It speaks the real framing through the real codec.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/codec.h"

namespace skirmish::test {

class TestClient {
 public:
  TestClient() = default;
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // `source`: bind to this local address first (another 127.0.0.x is
  // another client address to the server's per-address cap). `rcvbuf`:
  // SO_RCVBUF set before connecting (0 = the default), so a client that
  // stops reading backs the server's write queue up quickly.
  bool connect(uint16_t port, const char* host = "127.0.0.1", const char* source = nullptr, int rcvbuf = 0);
  void close();
  int fd() const { return fd_; }

  // Raw bytes, for hostile input.
  bool send_raw(std::span<const uint8_t> bytes);
  bool send_frame(std::span<const uint8_t> frame) { return send_raw(frame); }
  bool send_hello(const std::string& name = "tester",
                  proto::ProtocolVersion v = proto::ProtocolVersion::Current, const std::string& auth_token = "");
  bool send_ping(uint32_t nonce);

  // Next verified message, copied out as its body bytes; nullopt on close,
  // decode error or deadline. `closed()` tells which.
  std::optional<std::vector<uint8_t>> recv(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Receives until a message of `type` arrives (others are skipped).
  std::optional<std::vector<uint8_t>> recv_type(proto::Message type,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True once the server closed the connection (EOF or reset seen).
  bool closed() const { return closed_; }
  // Waits for the peer to close; true if it did within the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  static const proto::Envelope* envelope(const std::vector<uint8_t>& body) {
    return proto::GetEnvelope(body.data());
  }

  proto::FrameEncoder enc;

 private:
  int fd_ = -1;
  bool closed_ = false;
  proto::FrameDecoder dec_{proto::DecodeLimits{.max_frame_bytes = 1 << 20}};
  std::vector<std::vector<uint8_t>> ready_;
};

// One HTTP/1.1 GET on the admin port; the whole response ("" if no connect).
std::string http_get(uint16_t port, const std::string& target);

}  // namespace skirmish::test
