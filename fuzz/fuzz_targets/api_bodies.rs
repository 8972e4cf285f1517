//! The API's input parsing: request bodies as `serde_json` reads them into the
//! protocol types (what the server's `Json` / `OptionalJson` extractors do), and the
//! index parser behind `from`, `start`, `end` and `Last-Event-ID`
//! (`server::parse_index`). Nothing may panic; an accepted body must survive a
//! round trip; the index parser accepts exactly the trimmed decimal `u64`s.

#![no_main]

use app::protocol::{
    CancelRequest, ChatRequest, CreateConversation, InputRequest, Message, RestartRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `data` as `T`; if accepted, re-encoding and re-parsing must give the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let encoded = serde_json::to_string(&value).expect("an accepted body re-encodes");
        let again: T = serde_json::from_str(&encoded).expect("a re-encoded body parses");
        assert_eq!(
            serde_json::to_string(&again).expect("encode"),
            encoded,
            "a round trip changed the body"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ChatRequest>(data);
    round_trip::<CancelRequest>(data);
    round_trip::<RestartRequest>(data);
    round_trip::<InputRequest>(data);
    round_trip::<CreateConversation>(data);
    round_trip::<Message>(data);

    let text = String::from_utf8_lossy(data);
    for name in ["from", "start", "end", "Last-Event-ID"] {
        let parsed = server::parse_index(name, &text);
        match (parsed, text.trim().parse::<u64>()) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(err), Err(_)) => {
                let message = err.to_string();
                assert!(
                    message.contains(name),
                    "the error does not name {name}: {message}"
                );
            }
            (got, want) => panic!("parse_index({text:?}) = {got:?}, expected {want:?}"),
        }
    }
});
