//! The WebSocket frame decoders: any bytes as a frame of each socket, in
//! both directions, through the `cloacina-wire` types the server and
//! `cloacinactl` decode them with. A frame that decodes encodes again and
//! decodes to the same frame (the two sides cannot drift apart), and the
//! server's lenient reading of a client frame agrees with the typed one.
//!
//! - delivery socket: `ClientFrame` in, `ServerFrame` out, and a push's
//!   payload, base64 of an `ExecutionEvent`;
//! - reactor socket: `ReactorCommand` in, `ReactorReply` out;
//! - accumulator socket: any JSON document in (text or binary),
//!   `AccumulatorFrame` out.

use std::fmt::Debug;

use base64::Engine as _;
use cloacina_wire::executions::ExecutionEvent;
use cloacina_wire::graphs::{AccumulatorFrame, ReactorCommand, ReactorReply};
use cloacina_wire::ws::{ClientFrame, ServerFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn check(bytes: &[u8]) {
    // An accumulator event is any JSON document, in a text or binary frame.
    let _ = serde_json::from_slice::<Value>(bytes);
    // Every other frame is a text frame, so UTF-8 (the socket checks).
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let client = round_trip::<ClientFrame>(text);
    check_lenient_reading(text, client.as_ref());
    if let Some(ServerFrame::Push { payload_b64, .. }) = round_trip::<ServerFrame>(text)
        && let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(payload_b64)
    {
        let _ = serde_json::from_slice::<ExecutionEvent>(&payload);
    }
    round_trip::<ExecutionEvent>(text);
    round_trip::<ReactorCommand>(text);
    round_trip::<ReactorReply>(text);
    round_trip::<AccumulatorFrame>(text);
}

/// Decodes `text` as a `T`; when it decodes, checks that the frame encodes
/// and decodes again to the same frame.
fn round_trip<T: Serialize + DeserializeOwned + Debug>(text: &str) -> Option<T> {
    let frame: T = serde_json::from_str(text).ok()?;
    let written = serde_json::to_string(&frame)
        .unwrap_or_else(|error| panic!("{frame:?} decoded but does not encode: {error}"));
    let again: T = serde_json::from_str(&written)
        .unwrap_or_else(|error| panic!("{written} was encoded but does not decode: {error}"));
    let (first, second) = (as_value(&frame), as_value(&again));
    assert!(
        same_json(&first, &second),
        "{text} decodes as {first}, and re-encoded as {written} decodes as {second}"
    );
    Some(frame)
}

fn as_value(frame: &impl Serialize) -> Value {
    serde_json::to_value(frame).unwrap_or_else(|error| panic!("a frame as JSON: {error}"))
}

/// Equal, except that floats need only agree to a few ulps: serde_json's
/// default float parsing is not exact, so a float may not survive a
/// round trip bit for bit, which is no fault of the frames.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// The server reads a client frame leniently, as a JSON value, so that a
/// hello in another protocol version is told so rather than taken for
/// garbage (`server/src/ws/delivery.rs`: `open_stream`, `acked_id`). What
/// it reads from a frame written as an object (as both sides write them)
/// that also decodes as a `ClientFrame` must be what the frame says. (serde
/// also decodes a tagged enum from an array, `["ack", 1, 7]`, which the
/// server does not take for an ack: harmless, as an ack not taken only
/// means the push comes again.)
fn check_lenient_reading(text: &str, typed: Option<&ClientFrame>) {
    let lenient: Value = serde_json::from_str(text).unwrap_or_default();
    let (Some(typed), true) = (typed, lenient.is_object()) else {
        return;
    };
    match typed {
        ClientFrame::Hello {
            protocol_version, ..
        } => {
            assert_eq!(lenient["type"], "hello");
            assert_eq!(
                lenient["protocol_version"].as_u64(),
                Some(u64::from(*protocol_version))
            );
        }
        ClientFrame::Ack { id, .. } => {
            assert_eq!(lenient["type"], "ack");
            assert_eq!(lenient["id"].as_i64(), Some(*id));
        }
    }
}
