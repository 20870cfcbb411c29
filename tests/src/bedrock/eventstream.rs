//! The `application/vnd.amazon.eventstream` framing ConverseStream uses, written from the
//! format itself (not the SDK's encoder), so the SDK's decoder is checked against an
//! independent implementation.
//!
//! Frame: total length (u32), headers length (u32), CRC-32 of those 8 bytes, headers, payload,
//! CRC-32 of everything before it; big-endian, CRC-32/IEEE. Header: name length (u8), name,
//! type (u8; 7 = string), value length (u16), value.

/// CRC-32/IEEE (reflected, polynomial 0xEDB88320), bitwise: frames are small.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One frame with string headers.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// An event frame (`:message-type event`).
pub fn event(event_type: &str, payload: &serde_json::Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An exception frame (`:message-type exception`), e.g. `throttlingException`.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        serde_json::json!({"message": message})
            .to_string()
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn frame_lengths_and_checksums_are_consistent() {
        let f = event("messageStart", &serde_json::json!({"role": "assistant"}));
        let total = u32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
        assert_eq!(total, f.len());
        assert_eq!(
            u32::from_be_bytes(f[8..12].try_into().unwrap()),
            crc32(&f[0..8])
        );
        assert_eq!(
            u32::from_be_bytes(f[total - 4..].try_into().unwrap()),
            crc32(&f[..total - 4])
        );
    }
}
