//! Event cameras on USB, read directly through the `neuromorphic-drivers` crate (its own USB
//! protocol for each camera over rusb with a vendored libusb: no vendor SDK): `usb:` opens the
//! first camera found, `usb:SERIAL` one camera. Prophesee EVK4 / EVK3 HD send EVT 3.0 words,
//! iniVation DAVIS346 / DVXplorer their own; the crate's adapters decode them, and DAVIS346
//! frames come along as a second stream.
//!
//! The camera's settings are the crate's own configuration (JSON, as `safed cameras
//! --configuration TYPE` prints the defaults), plus the EVK4 / EVK3 HD rate limiter.

use std::collections::VecDeque;
use std::time::Duration;

use nd::adapters::Adapter;
use nd::rusb;
use nd::UsbDevice;
use neuromorphic_drivers as nd;

use super::{
    Event, EventError, EventSource, Format, Frame, Packet, PacketData, PixelFormat, SourceInfo, StreamInfo, StreamKind,
};

pub const PREFIX: &str = "usb:";

/// How long one read waits before the source returns an empty packet (so that its reader can
/// look at its stop flag).
const POLL: Duration = Duration::from_millis(100);

/// What a user sets for a camera.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsbOptions {
    /// The crate's configuration as JSON (`{"type": "prophesee_evk4", "configuration": {...}}`);
    /// None: the camera type's defaults.
    pub configuration: Option<String>,
    /// EVK4 / EVK3 HD hardware rate limiter, events per second (None: off).
    pub rate_limit: Option<u64>,
}

/// A camera found on the bus.
#[derive(Debug, Clone)]
pub struct Camera {
    pub device_type: nd::Type,
    pub bus: u8,
    pub address: u8,
    pub speed: String,
    /// The serial, or why it could not be read (most often: permission denied).
    pub serial: Result<String, rusb::Error>,
}

impl Camera {
    pub fn name(&self) -> &'static str {
        self.device_type.name()
    }
}

/// Why USB cannot be used at all, in words a user can act on.
pub fn explain(e: rusb::Error) -> String {
    if !std::path::Path::new("/dev/bus/usb").exists() {
        "this machine shows no USB bus (/dev/bus/usb is missing: a container or VM without USB devices \
         passed in?)"
            .into()
    } else {
        format!("libusb could not start ({e})")
    }
}

/// Every supported USB camera connected, including those safed may not open (their serial is
/// an error). The Ethernet cameras the crate also knows are left out: listing them broadcasts.
pub fn list() -> Result<Vec<Camera>, rusb::Error> {
    use rusb::UsbContext;
    let context = rusb::Context::new()?;
    let mut cameras = Vec::new();
    for device in context.devices()?.iter() {
        let Ok(descriptor) = device.device_descriptor() else { continue };
        let ids = (descriptor.vendor_id(), descriptor.product_id());
        let mut handle = None;
        for t in TYPES {
            if !t.ids.contains(&ids) {
                continue;
            }
            let h = match handle.get_or_insert_with(|| device.open()) {
                Ok(h) => h,
                Err(e) => {
                    // Without access the type cannot be told apart (EVK4 and EVK3 HD share ids).
                    cameras.push(camera(&device, t.kind, Err(*e)));
                    break;
                }
            };
            match (t.read_serial)(h) {
                Ok(Some(serial)) => cameras.push(camera(&device, t.kind, Ok(serial))),
                Ok(None) => continue,
                Err(e) => cameras.push(camera(&device, t.kind, Err(e))),
            }
            break;
        }
    }
    Ok(cameras)
}

type ReadSerial = fn(&mut rusb::DeviceHandle<rusb::Context>) -> rusb::Result<Option<String>>;

/// A USB camera type: the ids the crate matches and its serial reader (which also tells an
/// EVK3 HD from an EVK4, as they share ids).
struct UsbType {
    kind: nd::Type,
    ids: &'static [(u16, u16)],
    read_serial: ReadSerial,
}

macro_rules! usb_type {
    ($kind:ident, $module:ident) => {
        UsbType {
            kind: nd::Type::$kind,
            ids: nd::$module::Device::VENDOR_AND_PRODUCT_IDS,
            read_serial: nd::$module::Device::read_serial,
        }
    };
}

const TYPES: &[UsbType] = &[
    usb_type!(InivationDavis346, inivation_davis346),
    usb_type!(InivationDvxplorer, inivation_dvxplorer),
    usb_type!(PropheseeEvk3Hd, prophesee_evk3_hd),
    usb_type!(PropheseeEvk4, prophesee_evk4),
    usb_type!(CenturyarksVga, centuryarks_vga),
];

/// Every USB vendor and product id a supported camera has (for the udev rules' test).
pub fn known_ids() -> impl Iterator<Item = (u16, u16)> {
    TYPES.iter().flat_map(|t| t.ids.iter().copied())
}

fn camera(device: &rusb::Device<rusb::Context>, device_type: nd::Type, serial: Result<String, rusb::Error>) -> Camera {
    let speed = nd::devices::Connection::from(nd::usb::Speed::from(device.speed())).to_string();
    Camera { device_type, bus: device.bus_number(), address: device.address(), speed, serial }
}

/// The configuration a camera type starts with (`safed cameras --configuration`).
pub fn default_configuration(device_type: nd::Type) -> Option<nd::Configuration> {
    use nd::Configuration as C;
    Some(match device_type {
        nd::Type::InivationDavis346 => C::InivationDavis346(nd::inivation_davis346::DEFAULT_CONFIGURATION),
        nd::Type::InivationDvxplorer => C::InivationDvxplorer(nd::inivation_dvxplorer::DEFAULT_CONFIGURATION),
        nd::Type::PropheseeEvk3Hd => C::PropheseeEvk3Hd(nd::prophesee_evk3_hd::DEFAULT_CONFIGURATION),
        nd::Type::PropheseeEvk4 => C::PropheseeEvk4(nd::prophesee_evk4::DEFAULT_CONFIGURATION),
        nd::Type::CenturyarksVga => C::CenturyarksVga(nd::centuryarks_vga::DEFAULT_CONFIGURATION),
        nd::Type::LucidTriton => return None,
    })
}

/// The camera type named as the crate names it (`prophesee_evk4`, ...).
pub fn type_named(name: &str) -> Option<nd::Type> {
    TYPES.iter().map(|t| t.kind).find(|t| t.to_string() == name)
}

pub fn type_names() -> Vec<String> {
    TYPES.iter().map(|t| t.kind.to_string()).collect()
}

/// Whether `json` is a camera configuration in the crate's form (for the config check).
pub fn check_configuration(json: &str) -> Result<(), String> {
    serde_json::from_str::<nd::Configuration>(json)
        .map(|_| ())
        .map_err(|e| format!("not a camera configuration as `safed cameras --configuration TYPE` prints it: {e}"))
}

/// The configuration to open `device_type` with: the user's, or the defaults, with the rate
/// limiter applied.
fn configuration(input: &str, device_type: nd::Type, opts: &UsbOptions) -> Result<nd::Configuration, EventError> {
    let unsupported = |what: String| EventError::Unsupported { input: input.to_string(), what };
    let mut c = match &opts.configuration {
        Some(json) => serde_json::from_str::<nd::Configuration>(json)
            .map_err(|e| unsupported(format!("the camera configuration is not the crate's JSON form: {e}")))?,
        None => default_configuration(device_type)
            .ok_or_else(|| unsupported(format!("{} is not a USB camera", device_type.name())))?,
    };
    if c.type_name() != device_type.name() {
        return Err(unsupported(format!(
            "the camera configuration is for a {}, the camera is a {}",
            c.type_name(),
            device_type.name()
        )));
    }
    if let Some(rate) = opts.rate_limit {
        // The limiter counts per reference period (at most 200 µs).
        let per_period = (rate.saturating_mul(200) / 1_000_000).clamp(1, u32::MAX as u64) as u32;
        match &mut c {
            nd::Configuration::PropheseeEvk4(c) => {
                c.rate_limiter = Some(nd::prophesee_evk4::RateLimiter {
                    reference_period_us: 200,
                    maximum_events_per_period: per_period,
                })
            }
            nd::Configuration::PropheseeEvk3Hd(c) => {
                c.rate_limiter = Some(nd::prophesee_evk3_hd::RateLimiter {
                    reference_period_us: 200,
                    maximum_events_per_period: per_period,
                })
            }
            _ => return Err(unsupported(format!("a {} has no rate limiter (rate_limit)", device_type.name()))),
        }
    }
    Ok(c)
}

/// Turns a camera's bytes into events (and DAVIS346 frames), with the adapter's state carried
/// from buffer to buffer. The same path serves a live camera and the tests' recorded words.
pub struct Converter {
    adapter: Adapter,
    /// A byte of a word cut by the buffer's end (buffers are whole words in practice).
    odd: Option<u8>,
}

impl Converter {
    pub fn new(adapter: Adapter) -> Self {
        Converter { adapter, odd: None }
    }

    /// EVT 3.0 words from a Prophesee sensor of this size (what an EVK4 sends).
    pub fn evt3(width: u16, height: u16) -> Self {
        Converter::new(nd::adapters::evt3::Adapter::from_dimensions(width, height).into())
    }

    pub fn convert(&mut self, bytes: &[u8], events: &mut Vec<Event>, frames: &mut Vec<Frame>) {
        let joined;
        let bytes = match self.odd.take() {
            Some(b) if !bytes.is_empty() => {
                joined = [&[b][..], bytes].concat();
                &joined[..]
            }
            Some(b) => {
                self.odd = Some(b);
                return;
            }
            None => bytes,
        };
        if bytes.len() % 2 == 1 {
            self.odd = bytes.last().copied();
        }
        let mut push = |e: nd::types::PolarityEvent<u64, u16, u16>| {
            let (t, x, y) = (e.t, e.x, e.y);
            events.push(Event { t: t.min(i64::MAX as u64) as i64, x, y, p: e.polarity == nd::types::Polarity::On });
        };
        match &mut self.adapter {
            Adapter::Evt3(a) => a.convert(bytes, &mut push, |_| {}),
            Adapter::Dvxplorer(a) => a.convert(bytes, &mut push, |_| {}, |_| {}),
            Adapter::Davis346(a) => a.convert(bytes, &mut push, |_| {}, |_| {}, |f| frames.push(davis_frame(&f))),
        }
    }
}

/// A DAVIS346 APS frame (16-bit, the 10-bit reading in the top bits) as 8-bit grey.
fn davis_frame(f: &nd::adapters::davis346::FrameEvent) -> Frame {
    let (w, h) = (nd::inivation_davis346::PROPERTIES.width, nd::inivation_davis346::PROPERTIES.height);
    let clamp = |t: Option<u64>| t.unwrap_or(f.t).min(i64::MAX as u64) as i64;
    Frame {
        t: f.t.min(i64::MAX as u64) as i64,
        exposure_start: clamp(f.exposure_start_t),
        exposure_end: clamp(f.exposure_end_t),
        width: w,
        height: h,
        position: (0, 0),
        format: PixelFormat::Gray,
        pixels: f.pixels.iter().map(|p| (p >> 8) as u8).collect(),
    }
}

type Flag = nd::Flag<nd::Error, nd::UsbOverflow>;

/// An open camera.
pub struct UsbSource {
    name: String,
    info: SourceInfo,
    device: nd::Device,
    flag: Flag,
    converter: Converter,
    pending: VecDeque<Packet>,
    // Dropped last: the device's transfers are cancelled before the loop that serves them ends.
    _event_loop: std::sync::Arc<nd::UsbEventLoop>,
}

impl UsbSource {
    /// `source` is `usb:` (the first camera) or `usb:SERIAL`.
    pub fn open(source: &str, opts: &UsbOptions) -> Result<UsbSource, EventError> {
        let wanted = source.strip_prefix(PREFIX).unwrap_or_default();
        let unsupported = |what: String| EventError::Unsupported { input: source.to_string(), what };
        let cameras = list().map_err(|e| unsupported(format!("no USB camera can be opened: {}", explain(e))))?;
        let found = cameras.iter().find(|c| wanted.is_empty() || c.serial.as_ref().is_ok_and(|s| s == wanted));
        let Some(found) = found else {
            return Err(unsupported(not_found(wanted, &cameras)));
        };
        if let Err(e) = &found.serial {
            return Err(unsupported(format!(
                "{} on bus {} address {}: {e}; {}",
                found.name(),
                found.bus,
                found.address,
                PERMISSION_HINT
            )));
        }
        let listed = nd::devices::ListedDevice {
            device_type: found.device_type,
            location: nd::Location::BusNumberAndAddress { bus_number: found.bus, address: found.address },
            connection: nd::devices::Connection::UsbUnknown,
            serial: Ok(String::new()),
        };
        let config = configuration(source, found.device_type, opts)?;
        let (flag, event_loop) =
            nd::flag_and_event_loop().map_err(|e| unsupported(format!("USB is not usable here: {e}")))?;
        let device = listed
            .open(Some(config), None, event_loop.clone(), flag.clone())
            .map_err(|e| unsupported(format!("opening the {}: {e}", found.name())))?;
        let converter = Converter::new(device.create_adapter());
        let info = source_info(&device, found);
        Ok(UsbSource {
            name: source.to_string(),
            info,
            device,
            flag,
            converter,
            pending: VecDeque::new(),
            _event_loop: event_loop,
        })
    }
}

const PERMISSION_HINT: &str = "if this is a permission error, install safed's udev rules \
    (config/60-safed-cameras.rules; the Debian package installs them) and plug the camera in again";

fn not_found(wanted: &str, cameras: &[Camera]) -> String {
    let seen: Vec<_> = cameras
        .iter()
        .map(|c| format!("{} {}", c.name(), c.serial.as_deref().unwrap_or("(serial unreadable)")))
        .collect();
    match (wanted.is_empty(), seen.is_empty()) {
        (true, _) => "no USB event camera found (safed cameras lists them)".into(),
        (false, true) => format!("no USB event camera with serial {wanted:?}: none is connected"),
        (false, false) => format!("no USB event camera with serial {wanted:?}; connected: {}", seen.join(", ")),
    }
}

fn source_info(device: &nd::Device, found: &Camera) -> SourceInfo {
    let (w, h) = match device {
        nd::Device::InivationDavis346(_) => {
            (nd::inivation_davis346::PROPERTIES.width, nd::inivation_davis346::PROPERTIES.height)
        }
        nd::Device::InivationDvxplorer(_) => {
            (nd::inivation_dvxplorer::PROPERTIES.width, nd::inivation_dvxplorer::PROPERTIES.height)
        }
        nd::Device::PropheseeEvk3Hd(_) => {
            (nd::prophesee_evk3_hd::PROPERTIES.width, nd::prophesee_evk3_hd::PROPERTIES.height)
        }
        nd::Device::PropheseeEvk4(_) => (nd::prophesee_evk4::PROPERTIES.width, nd::prophesee_evk4::PROPERTIES.height),
        nd::Device::CenturyarksVga(_) => {
            (nd::centuryarks_vga::PROPERTIES.width, nd::centuryarks_vga::PROPERTIES.height)
        }
        nd::Device::LucidTriton(_) => (nd::lucid_triton::PROPERTIES.width, nd::lucid_triton::PROPERTIES.height),
    };
    let camera = Some(format!("{} {}", found.name(), found.serial.as_deref().unwrap_or_default()));
    let mut info = SourceInfo::single_event_stream(Format::Usb, Some((w, h)), camera.clone());
    if matches!(device, nd::Device::InivationDavis346(_)) {
        info.streams.push(StreamInfo {
            id: 1,
            name: "frames".into(),
            kind: StreamKind::Frames,
            type_id: "davis346 aps".into(),
            size: Some((w, h)),
            compression: "none".into(),
            source: camera,
        });
    }
    info
}

impl EventSource for UsbSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    /// The next buffer's events (then its frames, one packet each); an empty packet when the
    /// camera sent nothing for 100 ms; an error once the camera is gone (unplugged).
    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(Some(p));
        }
        if let Err(e) = self.flag.load_error() {
            return Err(EventError::Unsupported { input: self.name.clone(), what: format!("the camera stopped: {e}") });
        }
        let (mut events, mut frames) = (Vec::new(), Vec::new());
        if let Some(buffer) = self.device.next_with_timeout(&POLL) {
            self.converter.convert(buffer.slice, &mut events, &mut frames);
        }
        self.pending.extend(frames.into_iter().map(|f| Packet { stream: 1, data: PacketData::Frame(f) }));
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }

    fn dropped(&self) -> u64 {
        self.device.dropped_packets()
    }

    fn summary(&self) -> Option<String> {
        Some(format!("{} USB buffers dropped by the driver (its ring was full)", self.device.dropped_packets()))
    }
}
