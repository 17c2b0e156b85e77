// Compiles a django-cqrs --filter (a JSON object of Django ORM lookups) to SQL with bound values.
#include "common/filter.hpp"

#include <algorithm>
#include <array>

#include "common/error.hpp"

namespace pgcqrs {
namespace {

constexpr std::string_view kBad = "Bad filter kwargs!";

constexpr std::array<std::string_view, 17> kLookups = {
    "exact",    "iexact",    "in",         "gt",          "gte",      "lt",
    "lte",      "isnull",    "startswith", "istartswith", "endswith", "iendswith",
    "contains", "icontains", "range",      "regex",       "iregex"};

[[noreturn]] void bad(const std::string& reason) {
  std::string m(kBad);
  m += ' ';
  m += reason;
  throw CommandError(m);
}

bool is_lookup(std::string_view s) {
  return std::find(kLookups.begin(), kLookups.end(), s) != kLookups.end();
}

std::string lookup_list() {
  std::string out;
  for (const auto l : kLookups) {
    if (!out.empty()) out += ", ";
    out += l;
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_scalar(const json::Json& v) {
  return v.is_string() || v.is_boolean() || json::is_number(v);
}

std::string quote_key(std::string_view key) {
  std::string out = "'";
  out += json::excerpt_string(key);
  out += "'";
  return out;
}

// Escapes LIKE's wildcards and its escape character so the text matches itself.
std::string like_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\' || c == '%' || c == '_') out += '\\';
    out += c;
  }
  return out;
}

void append_array_element(std::string& out, const json::Json& v) {
  if (v.is_null()) {
    out += "NULL";
    return;
  }
  if (v.is_array()) {
    out += pg_array_literal(v);
    return;
  }
  const std::string text = filter_value_text(v);
  out += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

class Compiler {
 public:
  Compiler(const std::vector<FilterColumn>& columns, const std::string& primary_key,
           const std::function<std::string(const std::string&)>& quote_name, std::string_view alias,
           int first_param)
      : columns_(columns),
        primary_key_(primary_key),
        quote_name_(quote_name),
        alias_(alias),
        next_param_(first_param) {}

  CompiledFilter compile(const json::Json& filter) {
    std::vector<std::string> conditions;
    for (const auto& [key, value] : filter.items()) {
      conditions.push_back(condition(key, value));
    }
    if (conditions.empty()) {
      out_.sql = "true";
    } else if (conditions.size() == 1) {
      out_.sql = conditions[0];
    } else {
      for (std::size_t i = 0; i < conditions.size(); ++i) {
        if (i > 0) out_.sql += " AND ";
        out_.sql += '(';
        out_.sql += conditions[i];
        out_.sql += ')';
      }
    }
    return std::move(out_);
  }

 private:
  const FilterColumn* find(const std::string& name) const {
    const std::string& wanted = name == "pk" ? primary_key_ : name;
    for (const auto& c : columns_) {
      if (c.name == wanted) return &c;
    }
    return nullptr;
  }

  [[noreturn]] void unknown_field(const std::string& field) const {
    std::vector<std::string> names;
    names.reserve(columns_.size());
    for (const auto& c : columns_)
      names.push_back(c.name);
    std::sort(names.begin(), names.end());
    std::string choices;
    for (const auto& n : names) {
      if (!choices.empty()) choices += ", ";
      choices += n;
    }
    bad("Cannot resolve keyword " + quote_key(field) + " into field. Choices are: " + choices);
  }

  std::string param(std::optional<std::string> value) {
    if (value && value->find('\0') != std::string::npos) {
      bad("a value of " + quote_key(key_) + " contains a NUL character");
    }
    out_.params.push_back(std::move(value));
    std::string placeholder = "$";
    placeholder += std::to_string(next_param_++);
    return placeholder;
  }

  [[noreturn]] void wrong_value(const std::string& expected, const json::Json& v) const {
    bad(quote_key(key_) + " expects " + expected + ", got " + std::string(json::type_name(v)) +
        " " + json::excerpt(v, 40));
  }

  std::string scalar_param(const json::Json& v) {
    if (!is_scalar(v)) wrong_value("a string, number or boolean", v);
    return param(filter_value_text(v));
  }

  std::string condition(const std::string& key, const json::Json& value) {
    key_ = key;
    // the longest prefix made of whole `__`-separated parts that names a column is the field
    // (a column may itself contain `__`); the rest is the lookup
    std::vector<std::size_t> cuts;  // positions of each `__`
    for (std::size_t p = key.find("__"); p != std::string::npos; p = key.find("__", p + 2)) {
      cuts.push_back(p);
    }
    const FilterColumn* column = find(key);
    std::string lookup = "exact";
    if (column == nullptr) {
      for (auto it = cuts.rbegin(); it != cuts.rend(); ++it) {
        if (const FilterColumn* c = find(key.substr(0, *it))) {
          column = c;
          lookup = key.substr(*it + 2);
          break;
        }
      }
    }
    if (column == nullptr) unknown_field(cuts.empty() ? key : key.substr(0, cuts.front()));
    if (!is_lookup(lookup)) {
      bad("Unsupported lookup " + quote_key(lookup) + " for field " + quote_key(column->name) +
          " (" + column->type + "); supported: " + lookup_list());
    }
    return lookup_sql(*column, lookup, value);
  }

  std::string lookup_sql(const FilterColumn& c, const std::string& lookup, const json::Json& v) {
    std::string ref;
    if (!alias_.empty()) {
      ref = alias_;
      ref += '.';
    }
    ref += quote_name_(c.name);
    const bool is_json = c.type == "json" || c.type == "jsonb";
    const bool is_array = ends_with(c.type, "[]");
    const std::string jref = c.type == "json" ? ref + "::jsonb" : ref;
    // a value for comparing with the column: JSON text for json columns, an array literal for
    // array columns, else the scalar's text
    const auto value_param = [&](const json::Json& x) -> std::string {
      if (is_json) return param(json::dump(x)) + "::jsonb";
      if (is_array) {
        if (!x.is_array()) wrong_value("an array", x);
        return param(pg_array_literal(x));
      }
      return scalar_param(x);
    };

    if (lookup == "isnull") {
      if (!v.is_boolean()) {
        bad("The QuerySet value for an isnull lookup must be True or False (" + quote_key(key_) +
            " is " + json::excerpt(v, 40) + ")");
      }
      return ref + (v.get<bool>() ? " IS NULL" : " IS NOT NULL");
    }
    if ((lookup == "exact" || lookup == "iexact") && v.is_null()) return ref + " IS NULL";
    if (v.is_null()) bad(quote_key(key_) + ": cannot use null as a query value");

    if (lookup == "exact") return (is_json ? jref : ref) + " = " + value_param(v);
    if (lookup == "gt" || lookup == "gte" || lookup == "lt" || lookup == "lte") {
      const std::string op = lookup == "gt"    ? " > "
                             : lookup == "gte" ? " >= "
                             : lookup == "lt"  ? " < "
                                               : " <= ";
      return (is_json ? jref : ref) + op + value_param(v);
    }
    if (lookup == "in") {
      if (!v.is_array()) wrong_value("an array", v);
      if (is_array) bad(quote_key(key_) + ": 'in' is not supported on array columns");
      json::Json values = json::Json::array();
      for (const auto& x : v) {
        if (x.is_null()) continue;  // as Django: None never matches in `in`
        if (is_json) {
          values.push_back(json::dump(x));
        } else {
          if (!is_scalar(x)) wrong_value("an array of strings, numbers or booleans", v);
          values.push_back(x);
        }
      }
      if (values.empty()) return "false";
      if (is_json) return jref + " = ANY (" + param(pg_array_literal(values)) + "::jsonb[])";
      return ref + " = ANY (" + param(pg_array_literal(values)) + ")";
    }
    if (lookup == "range") {
      if (!v.is_array() || v.size() != 2 || v[0].is_null() || v[1].is_null()) {
        wrong_value("an array of two values", v);
      }
      const std::string low = value_param(v[0]);
      return (is_json ? jref : ref) + " BETWEEN " + low + " AND " + value_param(v[1]);
    }
    if (lookup == "contains" && (is_json || is_array)) {
      return (is_json ? jref : ref) + " @> " + value_param(v);
    }
    // text lookups over the column's text form
    if (!is_scalar(v)) wrong_value("a string, number or boolean", v);
    const std::string text = filter_value_text(v);
    const std::string as_text = ref + "::text";
    if (lookup == "iexact") return "upper(" + as_text + ") = upper(" + param(text) + "::text)";
    if (lookup == "regex") return as_text + " ~ " + param(text) + "::text";
    if (lookup == "iregex") return as_text + " ~* " + param(text) + "::text";
    const bool insensitive = lookup[0] == 'i';
    const std::string base = insensitive ? lookup.substr(1) : lookup;
    std::string pattern = like_escape(text);
    if (base == "startswith" || base == "contains") pattern += '%';
    if (base == "endswith" || base == "contains") pattern.insert(0, 1, '%');
    if (insensitive) return "upper(" + as_text + ") LIKE upper(" + param(pattern) + "::text)";
    return as_text + " LIKE " + param(pattern) + "::text";
  }

  const std::vector<FilterColumn>& columns_;
  const std::string& primary_key_;
  const std::function<std::string(const std::string&)>& quote_name_;
  std::string alias_;
  int next_param_;
  std::string key_;  // the key being compiled, for messages
  CompiledFilter out_;
};

}  // namespace

std::string filter_value_text(const json::Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (json::is_number(value)) return json::number_text(value);
  return json::dump(value);
}

std::string pg_array_literal(const json::Json& array) {
  std::string out = "{";
  bool first = true;
  for (const auto& v : array) {
    if (!first) out += ',';
    first = false;
    append_array_element(out, v);
  }
  out += '}';
  return out;
}

CompiledFilter compile_filter(std::string_view json_text, const std::vector<FilterColumn>& columns,
                              const std::string& primary_key,
                              const std::function<std::string(const std::string&)>& quote_name,
                              std::string_view alias, int first_param) {
  json::Json filter;
  try {
    filter = json::parse(json_text, {}, "filter");
  } catch (const MessageError&) {
    throw CommandError(std::string(kBad));
  }
  if (!filter.is_object()) throw CommandError(std::string(kBad));
  return Compiler(columns, primary_key, quote_name, alias, first_param).compile(filter);
}

}  // namespace pgcqrs
