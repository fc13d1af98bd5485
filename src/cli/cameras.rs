//! `safed cameras`: the USB event cameras connected (type, serial, bus), or why there are none
//! to use and what to do about it; `--configuration TYPE` prints a camera type's settings as
//! `[source] camera_config` takes them.

use anyhow::Result;

use crate::events::usb;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the default configuration of this camera type as JSON (edit it, then name the
    /// file in `[source] camera_config`): prophesee_evk4, prophesee_evk3_hd,
    /// inivation_davis346, inivation_dvxplorer, centuryarks_vga.
    #[arg(long, value_name = "TYPE")]
    pub configuration: Option<String>,
}

/// Where the rules are, installed and in a checkout.
const UDEV_HINT: &str = "USB cameras need safed's udev rules to be opened without root:\n  \
    the Debian package installs them (/usr/lib/udev/rules.d/60-safed-cameras.rules);\n  \
    from a checkout: sudo cp config/60-safed-cameras.rules /etc/udev/rules.d/ && \
    sudo udevadm control --reload-rules && sudo udevadm trigger\n  \
    then plug the camera in again. The systemd service reads them through its group (video).";

pub fn run(args: Args) -> Result<()> {
    if let Some(name) = args.configuration {
        let kind = usb::type_named(&name)
            .ok_or_else(|| anyhow::anyhow!("unknown camera type {name:?}: one of {}", usb::type_names().join(", ")))?;
        let config = usb::default_configuration(kind).ok_or_else(|| anyhow::anyhow!("{name} is not a USB camera"))?;
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    let cameras = match usb::list() {
        Ok(c) => c,
        Err(e) => {
            println!("no camera found: {}\n{UDEV_HINT}", usb::explain(e));
            return Ok(());
        }
    };
    if cameras.is_empty() {
        println!("no camera found (looked for: {})\n{UDEV_HINT}", usb::type_names().join(", "));
        return Ok(());
    }
    let mut denied = false;
    for c in &cameras {
        let serial = match &c.serial {
            Ok(s) => s.clone(),
            Err(e) => {
                denied |= matches!(e, neuromorphic_drivers::rusb::Error::Access);
                format!("(serial unreadable: {e})")
            }
        };
        println!(
            "{:<22} {:<14} bus {:03} address {:03} {:<10} source: usb:{}",
            c.name(),
            serial,
            c.bus,
            c.address,
            c.speed,
            c.serial.as_deref().unwrap_or("")
        );
    }
    if denied {
        println!("permission denied on a camera.\n{UDEV_HINT}");
    }
    Ok(())
}
