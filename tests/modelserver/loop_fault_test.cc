// Each fault of the issue against the real clients: retried with backoff
// (retry-after honoured) or failing at once with the provider's message.
#include <chrono>

#include "tests/modelserver/loop_fixture.h"

namespace kiln::modelserver {
namespace {

const char* kSubmit = "- tool_calls: [{name: submit, input: {summary: recovered}}]\n";

class Faults : public ::testing::TestWithParam<Flavour> {
 protected:
  // The fault once, then a good reply: the run must recover with one retry.
  void ExpectRecovers(const std::string& fault_yaml) {
    auto r = RunLoop("- fault: " + fault_yaml + "\n" + kSubmit, GetParam(), ws_);
    EXPECT_EQ(r.outcome.status, "submitted") << fault_yaml << ": " << r.outcome.reason;
    EXPECT_EQ(r.requests.size(), 2u) << fault_yaml;
    auto responses = r.Of("model.response");
    ASSERT_EQ(responses.size(), 2u) << fault_yaml;
    EXPECT_TRUE(responses[0]["retryable"].get<bool>());
    EXPECT_TRUE(responses[0].contains("retry_in_ms"));
    EXPECT_FALSE(responses[0]["error"].get<std::string>().empty());
    EXPECT_EQ(responses[1]["retries"], 1);
    EXPECT_EQ(responses[1]["attempt"], 2);
  }
  testutil::TempDir ws_;
};

TEST_P(Faults, RetriesRateLimitsOverloadAndServerErrors) {
  ExpectRecovers("{kind: http, status: 429}");
  ExpectRecovers("{kind: http, status: 529}");
  ExpectRecovers("{kind: http, status: 500}");
  ExpectRecovers("{kind: http, status: 503}");
}

TEST_P(Faults, RetryAfterIsHonouredAsAMinimum) {
  auto start = std::chrono::steady_clock::now();
  auto r =
      RunLoop(std::string("- fault: {kind: http, status: 429, retry_after: \"0.3\"}\n") + kSubmit,
              GetParam(), ws_);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  EXPECT_GE(ms, 300);
  EXPECT_GE(r.Of("model.response")[0]["retry_in_ms"].get<int>(), 300);
}

TEST_P(Faults, RecoversFromCutStreamsMalformedRepliesAndErrorEvents) {
  ExpectRecovers("{kind: cut, after_events: 3}");
  ExpectRecovers("{kind: malformed, after_events: 2}");
  ExpectRecovers("{kind: stream_error, after_events: 2, error_type: overloaded_error}");
}

TEST_P(Faults, StalledStreamIsAnIdleTimeoutAndSlowReplyARequestTimeout) {
  // A stream that goes quiet trips the idle timeout (300 ms in tests); a
  // plain reply may take long, up to the request timeout.
  auto r =
      RunLoop("- fault: {kind: stall, after_events: 1, stall_ms: 2000}\n" + std::string(kSubmit),
              GetParam(), ws_, [](spec::RunSpec& s) { s.model.request_timeout_ms = 800; });
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  auto responses = r.Of("model.response");
  ASSERT_EQ(responses.size(), 2u);
  auto err = responses[0].value("error", "");
  EXPECT_NE(err.find(GetParam().stream ? "idle timeout" : "request timeout"), std::string::npos)
      << err;
}

TEST_P(Faults, NonRetryableErrorsFailAtOnceWithTheProvidersMessage) {
  for (int status : {400, 401, 403}) {
    auto r =
        RunLoop("- fault: {kind: http, status: " + std::to_string(status) +
                    ", message: \"scripted refusal " + std::to_string(status) + "\"}\n" + kSubmit,
                GetParam(), ws_);
    EXPECT_EQ(r.outcome.status, "failed");
    EXPECT_EQ(r.requests.size(), 1u) << status;
    EXPECT_NE(r.outcome.reason.find("HTTP " + std::to_string(status)), std::string::npos)
        << r.outcome.reason;
    EXPECT_NE(r.outcome.reason.find("scripted refusal " + std::to_string(status)),
              std::string::npos);
    EXPECT_NE(r.outcome.reason.find("request id req_kiln_1"), std::string::npos)
        << r.outcome.reason;
  }
}

TEST_P(Faults, QuotaExhaustionIsNotRetried) {
  auto r = RunLoop(std::string("- fault: {kind: http, status: 429, error_type: insufficient_quota, "
                               "message: \"You exceeded your current quota\"}\n") +
                       kSubmit,
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_EQ(r.requests.size(), 1u);
  EXPECT_NE(r.outcome.reason.find("exceeded your current quota"), std::string::npos);
}

// Error events exist only in streams, so this suite runs for those alone.
class StreamFaults : public Faults {};

TEST_P(StreamFaults, NonRetryableErrorEventInTheStreamFails) {
  auto r = RunLoop(std::string("- fault: {kind: stream_error, after_events: 1, error_type: "
                               "invalid_request_error, message: \"prompt is too long\"}\n") +
                       kSubmit,
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_NE(r.outcome.reason.find("prompt is too long"), std::string::npos) << r.outcome.reason;
}

TEST_P(Faults, RetriesAreBoundedByAttempts) {
  auto r = RunLoop("- {fault: {kind: http, status: 529}, repeat: -1}\n", GetParam(), ws_,
                   [](spec::RunSpec& s) { s.retry.max_attempts = 3; });
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_EQ(r.requests.size(), 3u);
  EXPECT_NE(r.outcome.reason.find("gave up after 3 attempts"), std::string::npos)
      << r.outcome.reason;
}

TEST_P(Faults, RetriesAreBoundedByTotalWait) {
  auto r = RunLoop("- {fault: {kind: http, status: 429, retry_after: \"1\"}, repeat: -1}\n",
                   GetParam(), ws_, [](spec::RunSpec& s) { s.retry.max_total_wait_ms = 500; });
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_EQ(r.requests.size(), 1u);
  EXPECT_NE(r.outcome.reason.find("retry.max_total_wait_ms"), std::string::npos)
      << r.outcome.reason;
}

TEST_P(Faults, ConnectionRefusedIsRetriedThenFails) {
  testutil::TempDir ws;
  auto r = RunLoop(kSubmit, GetParam(), ws, [](spec::RunSpec& s) {
    s.model.base_url =
        "http://127.0.0.1:1" + std::string(GetParam().provider == "openai" ? "/v1" : "");
    s.retry.max_attempts = 2;
  });
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_EQ(r.Of("model.request").size(), 2u);
  EXPECT_NE(r.outcome.reason.find("127.0.0.1:1"), std::string::npos) << r.outcome.reason;
}

INSTANTIATE_TEST_SUITE_P(Formats, Faults, ::testing::ValuesIn(AllFlavours()), Name);
INSTANTIATE_TEST_SUITE_P(Formats, StreamFaults,
                         ::testing::Values(Flavour{"anthropic", true}, Flavour{"openai", true}),
                         Name);

}  // namespace
}  // namespace kiln::modelserver
