// Event <-> django-cqrs body: field-by-field validation with precise messages, ordered encoding.
#include "common/event.hpp"

#include <limits>

#include "common/error.hpp"

namespace pgcqrs {
namespace {

using json::Json;

[[noreturn]] void bad_value(std::string_view field, const Json& v, std::string_view cause) {
  throw MessageError(std::string(field) + " '" + json::excerpt(v) + "': " + std::string(cause));
}

[[noreturn]] void bad_string(std::string_view field, std::string_view s, std::string_view cause) {
  throw MessageError(std::string(field) + " '" + json::excerpt_string(s) +
                     "': " + std::string(cause));
}

// The members decode_event() reads; null pointers for absent keys. Not const: decode_event()
// moves the large members (instance_data, previous_data, meta) out of the parsed body.
struct Members {
  Json* signal_type = nullptr;
  Json* cqrs_id = nullptr;
  Json* instance_data = nullptr;
  Json* instance_pk = nullptr;
  Json* previous_data = nullptr;
  Json* correlation_id = nullptr;
  Json* retries = nullptr;
  Json* expires = nullptr;
  Json* meta = nullptr;
};

// One pass over the members (an ordered_json lookup is linear; a body may have many keys).
Members members_of(Json& body) {
  Members m;
  for (auto& [name, value] : body.get_ref<Json::object_t&>()) {
    Json* v = &value;
    if (name == "signal_type") {
      m.signal_type = v;
    } else if (name == "cqrs_id") {
      m.cqrs_id = v;
    } else if (name == "instance_data") {
      m.instance_data = v;
    } else if (name == "instance_pk") {
      m.instance_pk = v;
    } else if (name == "previous_data") {
      m.previous_data = v;
    } else if (name == "correlation_id") {
      m.correlation_id = v;
    } else if (name == "retries") {
      m.retries = v;
    } else if (name == "expires") {
      m.expires = v;
    } else if (name == "meta") {
      m.meta = v;
    }
  }
  return m;
}

std::int64_t decode_retries(const Json* v) {
  if (v == nullptr || v->is_null()) return 0;
  if (v->is_number_unsigned()) {
    const auto u = v->get<Json::number_unsigned_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      bad_value("retries", *v, "out of range");
    }
    return static_cast<std::int64_t>(u);
  }
  if (v->is_number_integer() && v->get<Json::number_integer_t>() >= 0) {
    return v->get<Json::number_integer_t>();
  }
  bad_value("retries", *v, "not a non-negative integer");
}

std::optional<Timestamp> decode_expires(const Json* v, const DecodeOptions& options) {
  if (v == nullptr) return options.now + options.default_ttl;
  if (v->is_null()) return std::nullopt;
  if (!v->is_string()) bad_value("expires", *v, "not a string or null");
  const auto& text = v->get_ref<const std::string&>();
  if (const std::string cause = timestamp_error(text); !cause.empty()) {
    bad_string("expires", text, cause);
  }
  return parse_timestamp(text);
}

}  // namespace

std::string_view to_string(Signal s) noexcept {
  switch (s) {
    case Signal::kSave:
      return "SAVE";
    case Signal::kDelete:
      return "DELETE";
    case Signal::kSync:
      return "SYNC";
  }
  return "UNKNOWN";
}

Signal parse_signal(std::string_view text) {
  if (text == "SAVE") return Signal::kSave;
  if (text == "DELETE") return Signal::kDelete;
  if (text == "SYNC") return Signal::kSync;
  bad_string("signal_type", text, "unknown; expected SAVE, DELETE or SYNC");
}

std::optional<std::int64_t> Event::revision() const {
  if (!instance_data.is_object()) return std::nullopt;
  const auto it = instance_data.find("cqrs_revision");
  if (it == instance_data.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto u = it->get<Json::number_unsigned_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(u);
  }
  if (it->is_number_integer()) return it->get<Json::number_integer_t>();
  return std::nullopt;
}

std::optional<std::string_view> Event::updated() const {
  if (!instance_data.is_object()) return std::nullopt;
  const auto it = instance_data.find("cqrs_updated");
  if (it == instance_data.end() || !it->is_string()) return std::nullopt;
  return std::string_view(it->get_ref<const std::string&>());
}

bool Event::expired(Timestamp now) const noexcept {
  return expires && *expires <= now;
}

std::string Event::pk_text() const {
  if (instance_pk.is_string()) return instance_pk.get<std::string>();
  return json::excerpt(instance_pk, std::numeric_limits<std::size_t>::max());
}

Event decode_event(std::string_view body_text, const DecodeOptions& options) {
  Json body = json::parse(body_text, options.limits, "JSON body");
  if (!body.is_object()) {
    throw MessageError("body: expected a JSON object, got " + std::string(json::type_name(body)) +
                       " '" + json::excerpt(body) + "'");
  }
  const Members m = members_of(body);
  const std::pair<const Json*, std::string_view> required[] = {{m.signal_type, "signal_type"},
                                                               {m.cqrs_id, "cqrs_id"},
                                                               {m.instance_data, "instance_data"},
                                                               {m.instance_pk, "instance_pk"}};
  for (const auto& [v, name] : required) {
    if (v == nullptr) throw MessageError("body: missing required key '" + std::string(name) + "'");
  }

  Event e;
  if (!m.signal_type->is_string()) bad_value("signal_type", *m.signal_type, "not a string");
  e.signal = parse_signal(m.signal_type->get_ref<const std::string&>());

  if (!m.cqrs_id->is_string()) bad_value("cqrs_id", *m.cqrs_id, "not a string");
  e.cqrs_id = m.cqrs_id->get<std::string>();
  if (e.cqrs_id.empty()) bad_string("cqrs_id", e.cqrs_id, "empty");

  if (!m.instance_data->is_object()) bad_value("instance_data", *m.instance_data, "not an object");
  e.instance_data = std::move(*m.instance_data);

  const Json& pk = *m.instance_pk;
  if (!(pk.is_number_integer() || pk.is_string() || pk.is_null())) {
    bad_value("instance_pk", pk, "not an integer, string or null");
  }
  e.instance_pk = pk;

  if (m.previous_data != nullptr) {
    if (!(m.previous_data->is_object() || m.previous_data->is_null())) {
      bad_value("previous_data", *m.previous_data, "not an object or null");
    }
  }
  e.retries = decode_retries(m.retries);
  e.expires = decode_expires(m.expires, options);
  // moved only now: every check above still quotes the body as it came
  if (m.previous_data != nullptr) e.previous_data = std::move(*m.previous_data);
  if (m.correlation_id != nullptr) e.correlation_id = std::move(*m.correlation_id);
  if (m.meta != nullptr) e.meta = std::move(*m.meta);
  return e;
}

std::string encode_event(const Event& e) {
  // Written member by member: no copy of instance_data into a temporary document.
  std::string out;
  out.reserve(256);
  const auto member = [&out](std::string_view key, const Json& value) {
    out += out.empty() ? "{\"" : ",\"";
    out += key;
    out += "\":";
    json::dump_to(out, value);
  };
  member("signal_type", Json(std::string(to_string(e.signal))));
  member("cqrs_id", Json(e.cqrs_id));
  member("instance_data", e.instance_data);
  member("previous_data", e.previous_data);
  member("instance_pk", e.instance_pk);
  member("correlation_id", e.correlation_id);
  member("retries", Json(e.retries));
  member("expires", e.expires ? Json(format_expires(*e.expires)) : Json(nullptr));
  member("meta", e.meta);
  out += '}';
  return out;
}

json::Json parse_dump_line(std::string_view line, const json::ParseLimits& limits) {
  Json v = json::parse(line, limits, "dump line");
  if (!v.is_object()) {
    throw MessageError("dump line: expected a JSON object, got " + std::string(json::type_name(v)) +
                       " '" + json::excerpt(v) + "'");
  }
  return v;
}

}  // namespace pgcqrs
