// skirmish-server: parse the configuration, then run the server.
//
// Exit codes: 0 clean stop, 1 a start-up failure (port in use, ...), 2 a bad
// config or flag (so a supervisor does not respawn it in a loop).
#include <uv.h>

#include <cstdio>

#include "admin.h"
#include "config/config.h"
#include "core/log.h"
#include "core/process.h"
#include "net.h"
#include "worker/worker.h"

using namespace skirmish;

namespace {

struct Server {
  uv_loop_t* loop;
  config::Config cfg;
  worker::Worker* worker = nullptr;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t drain_timer;
  admin::AdminServer* admin = nullptr;
  bool draining = false;
  int64_t drain_started_ms = 0;
};

void stop_loop(Server* s) {
  s->worker->close_all();
  s->admin->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&s->drain_timer), nullptr);
  for (uv_signal_t* sig : {&s->sigterm, &s->sigint, &s->sighup})
    uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
}

void on_terminate(uv_signal_t* sig, int signum) {
  auto* s = static_cast<Server*>(sig->data);
  if (s->draining) {
    spdlog::warn("second {}: stopping now", strsignal(signum));
    stop_loop(s);
    return;
  }
  s->draining = true;
  s->drain_started_ms = core::monotonic_ms();
  spdlog::info("{}: draining {} sessions (up to {} ms)", strsignal(signum), s->worker->session_count(),
               s->cfg.drain_timeout_ms);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->listener), nullptr);
  s->worker->shutdown_all(s->cfg.drain_timeout_ms);
  // Poll the session count; the loop exits once every handle is closed.
  uv_timer_start(
      &s->drain_timer,
      [](uv_timer_t* t) {
        auto* srv = static_cast<Server*>(t->data);
        if (srv->worker->session_count() == 0 ||
            core::monotonic_ms() - srv->drain_started_ms >= int64_t(srv->cfg.drain_timeout_ms)) {
          spdlog::info("drained; exiting");
          stop_loop(srv);
        }
      },
      0, 20);
}

void on_reload(uv_signal_t* sig, int) {
  auto* s = static_cast<Server*>(sig->data);
  std::string err;
  auto fresh = config::load_file(s->cfg.source, err);
  if (!fresh) {
    spdlog::error("SIGHUP: keeping the old config: {}", err);
    return;
  }
  // Only the keys that can change live; ports, workers and table sizes need
  // a restart.
  config::Config next = s->cfg;
  next.log_level = fresh->log_level;
  next.handshake_timeout_ms = fresh->handshake_timeout_ms;
  next.idle_timeout_ms = fresh->idle_timeout_ms;
  next.resume_grace_ms = fresh->resume_grace_ms;
  next.drain_timeout_ms = fresh->drain_timeout_ms;
  next.messages_per_second = fresh->messages_per_second;
  next.message_burst = fresh->message_burst;
  s->cfg = next;
  spdlog::set_level(*log::parse_level(next.log_level));
  s->worker->apply_config(next);
  spdlog::info("SIGHUP: config reloaded from {}", next.source);
}

void on_connection(uv_stream_t* server, int status) {
  auto* s = static_cast<Server*>(server->data);
  if (status < 0) {
    spdlog::warn("accept: {}", uv_strerror(status));
    return;
  }
  s->worker->accept_from(server);
}

}  // namespace

int main(int argc, char** argv) {
  core::init_process_title(argc, argv);
  config::Options opts = config::parse_command_line(argc, argv);
  if (opts.status == config::ParseStatus::Exit) {
    std::fputs(opts.message.c_str(), stdout);
    return opts.exit_code;
  }
  if (opts.status == config::ParseStatus::Error) {
    std::fprintf(stderr, "%s\n", opts.message.c_str());
    return opts.exit_code;
  }
  Server s;
  s.cfg = opts.config;
  log::init_logging("master", *log::parse_level(s.cfg.log_level));
  spdlog::info("skirmish-server {} starting: {}", SKIRMISH_VERSION, config::describe(s.cfg));
  signal(SIGPIPE, SIG_IGN);

  s.loop = uv_default_loop();
  int64_t start_ms = core::monotonic_ms();
  worker::Worker w(s.loop, s.cfg, 0, start_ms);
  s.worker = &w;

  uv_tcp_init(s.loop, &s.listener);
  s.listener.data = &s;
  uint16_t port = 0;
  if (int r = net::listen_tcp(&s.listener, s.cfg.listen_host, s.cfg.listen_port, 1024, on_connection, &port)) {
    spdlog::critical("cannot listen on {}:{}: {}", s.cfg.listen_host, s.cfg.listen_port, uv_strerror(r));
    return 1;
  }
  spdlog::info("listening on {}:{}", s.cfg.listen_host, port);

  admin::AdminServer admin(s.loop, [&s](const std::string& target) -> admin::Response {
    if (target == "/healthz") return {200, "text/plain", "ok\n"};
    if (target == "/readyz") return s.draining ? admin::Response{503, "text/plain", "draining\n"}
                                               : admin::Response{200, "text/plain", "ready\n"};
    return {404, "text/plain", "not found\n"};
  });
  s.admin = &admin;
  uint16_t admin_port = 0;
  if (int r = admin.listen(s.cfg.admin_host, s.cfg.admin_port, &admin_port)) {
    spdlog::critical("cannot listen on {}:{} (admin): {}", s.cfg.admin_host, s.cfg.admin_port, uv_strerror(r));
    return 1;
  }
  spdlog::info("admin listening on {}:{}", s.cfg.admin_host, admin_port);

  uv_timer_init(s.loop, &s.drain_timer);
  s.drain_timer.data = &s;
  for (uv_signal_t* sig : {&s.sigterm, &s.sigint, &s.sighup}) {
    uv_signal_init(s.loop, sig);
    sig->data = &s;
  }
  uv_signal_start(&s.sigterm, on_terminate, SIGTERM);
  uv_signal_start(&s.sigint, on_terminate, SIGINT);
  uv_signal_start(&s.sighup, on_reload, SIGHUP);

  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  spdlog::info("stopped");
  return 0;
}
