//! ROS 2 EventPacket payloads (evt3 across packet borders, libcaer_cmp, libcaer): the first byte
//! chooses where packets end; every encoding decodes every packet, its state carried across.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    safed::events::packet_codecs::fuzz_packets(data);
});
