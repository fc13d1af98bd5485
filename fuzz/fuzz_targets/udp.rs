//! UDP datagrams (faery's t64_x16_y16_on8 and t32_x16_y15_on1, aestream's SPIF): the first two
//! bytes choose where datagrams end and the sensor width; every format decodes every datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::udp::fuzz_datagrams(data);
});
