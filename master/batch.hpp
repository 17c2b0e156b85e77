// Batch outbox rows: one row per captured statement (per 1000 rows or 16 MB of it), holding each
// changed row's column texts; the agent turns them into one django-cqrs SAVE event per row.
//
// A batch row (migrations/master/0003) has
//   batch         text[][]: one inner array per changed row, one text per layout position; a
//       statement of one row stores that row's text[] itself (one dimension);
//   batch_layout  text: the key of a layout in cqrs.batch_layout ('#' and 16 hex digits,
//       migration 0004; the agent's fetch replaces it with the layout) or, in rows written
//       before that migration, the layout itself: a text[] literal of '<kind>:<name>' per
//       position, where kind is
//       n  number (int2/4/8, float4/8, numeric): the text output, a JSON number unless it is
//          NaN or an infinity (then a string), as json_build_object() writes it
//       b  boolean ("true" / "false", as boolean casts to text; "t" / "f" too)
//       s  string (text, varchar, uuid): the text output as a JSON string
//       j  JSON text written as it is (json, jsonb, and to_json() of every other type: date,
//          and bpchar, whose cast to text drops the padding json_build_object() keeps)
//       Z  timestamptz as to_json() writes it (ISO 8601 with the writing session's UTC offset,
//          whatever its DateStyle), written as cqrs.django_ts(): converted to UTC
//       z  timestamp as to_json() writes it, written as cqrs.django_ts_naive()
//       T  timestamptz's text output in TimeZone UTC and DateStyle ISO, and
//       t  timestamp's in DateStyle ISO: what the triggers of earlier pgcqrs versions stored
//          (they ran with those settings), read for the batches they left in the outbox
//       P  the event's previous_data (JSON text), not part of instance_data
//       M  the event's meta (JSON text), not part of instance_data
//   The first three positions are the primary key, cqrs_revision and cqrs_updated; with the
//   model's other fields they make instance_data, in layout order, as the per-event capture's
//   json_build_object() writes it (master/capture.cpp).
// No text depends on the writing session's DateStyle, and the timestamptz texts carry their
// offset, so the triggers run in the session's own settings, as the model's filter and meta
// SQL (and the triggers of models that are not batched) do.
// Every batch row names its own layout, which is never removed, so a batch stays readable
// after `pgcqrs migrate` changed the model's fields or the table's columns changed type. A text
// that does not have its kind's shape (a column whose type changed and was not re-migrated) is
// written as a JSON string rather than refused: the event still goes out, with the value the row
// has.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "master/outbox.hpp"

namespace pgcqrs::master {

// Throws MessageError naming the outbox id of `row` when `layout` (the text output of a
// batch_layout column, or of the layout its key names) is not a layout; a key is one that
// names no layout.
BatchLayout parse_layout(const OutboxRow& row, std::string_view layout);

// The events of batch row `row` (its id, cqrs_id, signal, meta and correlation_id are copied
// into each; `batch` is the text output of its batch column), in batch order, with
// OutboxRow::index 1, 2, ... Throws MessageError naming the outbox id when the batch does not
// match the layout.
std::vector<OutboxRow> expand_batch(const OutboxRow& row, std::string_view batch,
                                    const BatchLayout& layout);
// The same with the layout's text, parsed for this call.
std::vector<OutboxRow> expand_batch(const OutboxRow& row, std::string_view batch,
                                    std::string_view layout);

// The elements of a one- or two-dimensional text[] as array_out() writes it, in storage order
// (NULL elements as nullopt); `rows` gets the outer dimension (1 for a one-dimensional array,
// 0 for an empty one). False when `text` is not such an array literal.
bool parse_text_array(std::string_view text, std::vector<std::optional<std::string>>& elements,
                      std::size_t& rows);

}  // namespace pgcqrs::master
