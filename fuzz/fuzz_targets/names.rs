//! Names, MAC addresses and MTUs: validation never panics, and what it
//! accepts is what the rest of pont relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pont::model::{validate_mac, validate_mtu, validate_name, MacAddr};

fuzz_target!(|data: &[u8]| {
    if let Some((&first, rest)) = data.split_first() {
        let mtu = u32::from_le_bytes([first, *rest.first().unwrap_or(&0), 0, 0]);
        assert_eq!(validate_mtu(mtu).is_ok(), (68..=65535).contains(&mtu));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if validate_name("network", text).is_ok() {
        assert!(!text.is_empty() && text.len() <= 64);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    }
    if let Ok(mac) = text.parse::<MacAddr>() {
        // Six pairs of hex digits and nothing else: it prints back the same.
        assert_eq!(mac.to_string(), text.to_ascii_lowercase(), "{text:?}");
    }
    if let Ok(mac) = validate_mac(text) {
        assert_eq!(mac.0[0] & 1, 0, "{text:?} is multicast");
        assert_ne!(mac.0, [0; 6]);
    }
});
