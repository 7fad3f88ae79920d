#include "controller/sessionlog/request_body.h"

#include <algorithm>

namespace kiln::sessionlog {
namespace {

using nlohmann::json;

// Less kept than this: the body is written whole.
constexpr size_t kMinKept = 1024;

bool Continuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

}  // namespace

json BodyDelta(const RequestBody& base, std::string_view body) {
  if (base.seq == 0) return nullptr;
  const std::string_view old = base.body;
  const size_t most = std::min(old.size(), body.size());
  size_t head = std::mismatch(old.begin(), old.begin() + most, body.begin()).first - old.begin();
  while (head > 0 && head < body.size() && Continuation(body[head])) --head;
  size_t tail = 0;
  while (tail < most - head && old[old.size() - 1 - tail] == body[body.size() - 1 - tail]) ++tail;
  while (tail > 0 && Continuation(body[body.size() - tail])) --tail;
  if (head + tail < kMinKept) return nullptr;
  return {{"base", base.seq},
          {"head", head},
          {"tail", tail},
          {"text", body.substr(head, body.size() - head - tail)}};
}

Result<std::string> ResolveBody(const RequestBody& base, uint64_t seq, const json& delta) {
  auto bad = [&](const std::string& what) {
    return Error::Invalid("seq " + std::to_string(seq) + " (model.request): its body_delta " +
                          what);
  };
  auto count = [&](const char* key) {
    auto it = delta.find(key);
    return it != delta.end() && it->is_number_integer() && it->get<int64_t>() >= 0;
  };
  if (!delta.is_object() || !count("base") || !count("head") || !count("tail") ||
      !delta.contains("text") || !delta["text"].is_string()) {
    return bad("is not {\"base\", \"head\", \"tail\": integers, \"text\": a string}");
  }
  const uint64_t on = delta["base"].get<uint64_t>(), head = delta["head"].get<uint64_t>(),
                 tail = delta["tail"].get<uint64_t>();
  if (base.seq == 0 || on != base.seq) {
    return bad("names seq " + std::to_string(on) +
               " as its base, and the model.request before it " +
               (base.seq == 0 ? std::string("has no body to build on")
                              : "is seq " + std::to_string(base.seq)));
  }
  if (head > base.body.size() || tail > base.body.size() - head) {
    return bad("keeps " + std::to_string(head) + " + " + std::to_string(tail) +
               " bytes of a base body of " + std::to_string(base.body.size()));
  }
  const std::string& text = delta["text"].get_ref<const std::string&>();
  std::string body;
  body.reserve(head + text.size() + tail);
  body.append(base.body, 0, head).append(text).append(base.body, base.body.size() - tail, tail);
  return body;
}

Status ResolveRequest(RequestBody* base, uint64_t seq, json* payload) {
  auto delta = payload->is_object() ? payload->find("body_delta") : payload->end();
  if (payload->is_object() && delta != payload->end()) {
    auto body = ResolveBody(*base, seq, *delta);
    if (!body) {
      *base = {};
      return body.error();
    }
    payload->erase(delta);
    (*payload)["body"] = *body;
    *base = {seq, std::move(*body)};
    return Ok();
  }
  auto whole = payload->is_object() ? payload->find("body") : payload->end();
  if (payload->is_object() && whole != payload->end() && whole->is_string()) {
    *base = {seq, whole->get<std::string>()};
  } else {
    *base = {};
  }
  return Ok();
}

}  // namespace kiln::sessionlog
