// The test server's teardown check (tests/support/server_process.h): a
// server's log that holds sanitizer output fails the test. The scan on
// sample logs in the formats ASan, LSan and UBSan print, and the real
// teardown path: a report written into a running server's own stderr pipe,
// where a worker's ASan abort lands, must fail the test that owns it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <string>

#include "tests/support/server_process.h"

using namespace skirmish::test;

namespace {

std::string sample(const std::string& name) {
  return read_file(std::string(SKIRMISH_SOURCE_DIR) + "/tests/support/testdata/" + name);
}

}  // namespace

TEST_CASE("server log scan: an ASan abort in a worker the master respawned is found") {
  const std::string log = sample("asan_worker_abort.log");
  REQUIRE(!log.empty());
  const std::string r = sanitizer_report(log);
  CHECK(r.rfind("==4242==ERROR: AddressSanitizer: heap-use-after-free", 0) == 0);
  CHECK(r.find("SUMMARY: AddressSanitizer") != std::string::npos);
}

TEST_CASE("server log scan: a UBSan runtime error is found") {
  const std::string r = sanitizer_report(sample("ubsan_runtime_error.log"));
  CHECK(r.rfind("/work/main/server/game/rules.cpp:212:31: runtime error: signed integer overflow", 0) == 0);
}

TEST_CASE("server log scan: a LeakSanitizer report at the master's exit is found") {
  const std::string r = sanitizer_report(sample("lsan_master_exit.log"));
  CHECK(r.rfind("==4240==ERROR: LeakSanitizer: detected memory leaks", 0) == 0);
}

TEST_CASE("server log scan: the server's own lines never count, even quoting a client") {
  const std::string log = sample("clean.log");
  REQUIRE(log.find("AddressSanitizer") != std::string::npos);  // the sample does quote it
  CHECK(sanitizer_report(log).empty());
  CHECK(sanitizer_report("").empty());
}

TEST_CASE("server log scan: a report is cut at 40 lines") {
  std::string log = "==1==ERROR: AddressSanitizer: stack-overflow\n";
  for (int i = 0; i < 100; ++i) log += "    #" + std::to_string(i) + " 0x0 in f()\n";
  const std::string r = sanitizer_report(log);
  CHECK(std::count(r.begin(), r.end(), '\n') == 40);
}

// Expected to fail: this is the check failing a test.
TEST_CASE("server log check: sanitizer output fails the test", "[!shouldfail]") {
  check_no_sanitizer_output(sample("asan_worker_abort.log"), "the sample server");
}

TEST_CASE("server log check: a clean log passes") { check_no_sanitizer_output(sample("clean.log"), "the sample"); }

// Expected to fail, in the ServerProcess destructor: a real server whose
// stderr (the pipe every process of it writes to) receives an ASan report
// in the middle of its run, as when a worker aborts and is respawned.
TEST_CASE("server teardown: a real server whose log got an ASan report fails its test", "[!shouldfail]") {
  ServerProcess s;
  REQUIRE(s.wait_ready());
  const int fd = open(("/proc/" + std::to_string(s.pid()) + "/fd/2").c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const std::string report = sample("asan_worker_abort.log").substr(sample("asan_worker_abort.log").find("====="));
  REQUIRE(write(fd, report.data(), report.size()) == ssize_t(report.size()));
  close(fd);
  REQUIRE(s.wait_log("==ABORTING"));
  // No assertion fails here: only the teardown can fail this test.
}

// And the same real server, left alone, passes its teardown.
TEST_CASE("server teardown: a real server with a clean log passes") {
  ServerProcess s;
  REQUIRE(s.wait_ready());
  s.signal(SIGTERM);
  CHECK(s.wait_exit(15s) == 0);
  CHECK(sanitizer_report(s.log()).empty());
}
