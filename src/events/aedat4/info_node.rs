//! The IO header's infoNode: DV's XML tree with one node per stream id.
//!
//! ```xml
//! <dv version="2.0"><node name="outInfo" path="/outInfo/">
//!   <node name="0" path="/outInfo/0/">
//!     <attr key="compression" type="string">LZ4</attr>
//!     <attr key="originalOutputName" type="string">events</attr>
//!     <attr key="typeIdentifier" type="string">EVTS</attr>
//!     <node name="info" ...><attr key="sizeX" type="int">346</attr>...</node>
//! ```

use super::Compression;
use crate::events::{StreamInfo, StreamKind};

pub fn parse(xml: &str, compression: Compression) -> Result<Vec<StreamInfo>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not valid XML: {e}"))?;
    let out_info = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("node"))
        .ok_or("no <node name=\"outInfo\"> under <dv>")?;
    let mut streams = Vec::new();
    for node in out_info.children().filter(|n| n.has_tag_name("node")) {
        let name = node.attribute("name").unwrap_or("");
        let id: u32 = name.parse().map_err(|_| format!("stream node name {name:?} is not a stream id"))?;
        let attr = |n: roxmltree::Node, key: &str| {
            n.children()
                .find(|c| c.has_tag_name("attr") && c.attribute("key") == Some(key))
                .and_then(|c| c.text())
                .map(str::trim)
                .map(String::from)
        };
        let type_id = attr(node, "typeIdentifier").ok_or(format!("stream {id} has no typeIdentifier"))?;
        let kind = match type_id.as_str() {
            "EVTS" => StreamKind::Events,
            "FRME" => StreamKind::Frames,
            "IMUS" => StreamKind::Imu,
            "TRIG" => StreamKind::Triggers,
            _ => StreamKind::Other,
        };
        let info = node.children().find(|n| n.has_tag_name("node") && n.attribute("name") == Some("info"));
        let size = info.and_then(|i| {
            let w = attr(i, "sizeX")?.parse().ok()?;
            let h = attr(i, "sizeY")?.parse().ok()?;
            Some((w, h))
        });
        streams.push(StreamInfo {
            id,
            name: attr(node, "originalOutputName").unwrap_or_else(|| format!("stream{id}")),
            kind,
            type_id,
            size,
            compression: compression.name().into(),
            source: info.and_then(|i| attr(i, "source")),
        });
    }
    streams.sort_by_key(|s| s.id);
    if streams.windows(2).any(|w| w[0].id == w[1].id) {
        return Err("a stream id is declared twice".into());
    }
    if streams.iter().any(|s| s.id > 1024) {
        return Err("stream id over 1024".into());
    }
    Ok(streams)
}
