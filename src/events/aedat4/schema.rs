//! The AEDAT4 flatbuffer tables we read (iniVation's schemas: IOHeader, EventPacket, Frame,
//! IMUPacket, TriggerPacket), written the way `flatc --rust` writes accessors: every buffer is
//! run through the `flatbuffers` verifier before any field is read, so the unchecked reads below
//! stay inside the buffer.

use flatbuffers::{
    Follow, ForwardsUOffset, InvalidFlatbuffer, SimpleToVerifyInSlice, Table, VOffsetT, Vector, Verifiable, Verifier,
    VerifierOptions,
};

/// Field slot `n` (0-based) of a table, as a vtable offset.
const fn slot(n: u16) -> VOffsetT {
    4 + 2 * n
}

/// `Event { i64 t; i16 x; i16 y; bool p; }`: 16 bytes with 3 of padding.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct FbEvent(pub [u8; 16]);

impl<'a> Follow<'a> for FbEvent {
    type Inner = &'a FbEvent;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        flatbuffers::follow_cast_ref::<FbEvent>(buf, loc)
    }
}

impl Verifiable for FbEvent {
    fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
        v.in_buffer::<Self>(pos)
    }
}

impl SimpleToVerifyInSlice for FbEvent {}

/// Declares a table type: a `Table` wrapper with `Follow`, verified fields and typed getters.
macro_rules! fb_table {
    ($name:ident { $($field:ident : $ty:ty = $slot:expr),* $(,)? }) => {
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            table: Table<'a>,
        }

        impl<'a> Follow<'a> for $name<'a> {
            type Inner = $name<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
                $name { table: Table::new(buf, loc) }
            }
        }

        impl Verifiable for $name<'_> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
                v.visit_table(pos)?
                    $(.visit_field::<$ty>(stringify!($field), slot($slot), false)?)*
                    .finish();
                Ok(())
            }
        }
    };
}

/// Reads a scalar field with its schema default.
macro_rules! scalar {
    ($self:ident, $ty:ty, $slot:expr, $default:expr) => {
        // SAFETY: the buffer was verified against this table's layout at construction.
        unsafe { $self.table.get::<$ty>(slot($slot), Some($default)).unwrap_or($default) }
    };
}

/// Reads an offset field (vector, string, table) if present.
macro_rules! offset {
    ($self:ident, $ty:ty, $slot:expr) => {
        // SAFETY: as for `scalar!`.
        unsafe { $self.table.get::<ForwardsUOffset<$ty>>(slot($slot), None) }
    };
}

fb_table!(IoHeader { compression: i32 = 0, data_table_position: i64 = 1, info_node: ForwardsUOffset<&str> = 2 });

impl<'a> IoHeader<'a> {
    pub fn compression(&self) -> i32 {
        scalar!(self, i32, 0, 0)
    }
    pub fn data_table_position(&self) -> i64 {
        scalar!(self, i64, 1, -1)
    }
    pub fn info_node(&self) -> Option<&'a str> {
        offset!(self, &str, 2)
    }
}

fb_table!(EventPacket { elements: ForwardsUOffset<Vector<'_, FbEvent>> = 0 });

impl<'a> EventPacket<'a> {
    /// The raw 16-byte records, for a decode loop without per-element indirection.
    pub fn element_bytes(&self) -> &'a [u8] {
        offset!(self, Vector<'a, FbEvent>, 0).map(|v| v.bytes()).unwrap_or(&[])
    }
}

fb_table!(Frame {
    timestamp: i64 = 0,
    start_of_frame: i64 = 1,
    end_of_frame: i64 = 2,
    start_of_exposure: i64 = 3,
    end_of_exposure: i64 = 4,
    format: i8 = 5,
    size_x: i16 = 6,
    size_y: i16 = 7,
    position_x: i16 = 8,
    position_y: i16 = 9,
    pixels: ForwardsUOffset<Vector<'_, u8>> = 10,
});

impl<'a> Frame<'a> {
    pub fn timestamp(&self) -> i64 {
        scalar!(self, i64, 0, 0)
    }
    pub fn start_of_exposure(&self) -> i64 {
        scalar!(self, i64, 3, 0)
    }
    pub fn end_of_exposure(&self) -> i64 {
        scalar!(self, i64, 4, 0)
    }
    pub fn format(&self) -> i8 {
        scalar!(self, i8, 5, 0)
    }
    pub fn size(&self) -> (i16, i16) {
        (scalar!(self, i16, 6, 0), scalar!(self, i16, 7, 0))
    }
    pub fn position(&self) -> (i16, i16) {
        (scalar!(self, i16, 8, 0), scalar!(self, i16, 9, 0))
    }
    pub fn pixels(&self) -> &'a [u8] {
        offset!(self, Vector<'a, u8>, 10).map(|v| v.bytes()).unwrap_or(&[])
    }
}

fb_table!(Imu {
    timestamp: i64 = 0,
    temperature: f32 = 1,
    accelerometer_x: f32 = 2,
    accelerometer_y: f32 = 3,
    accelerometer_z: f32 = 4,
    gyroscope_x: f32 = 5,
    gyroscope_y: f32 = 6,
    gyroscope_z: f32 = 7,
    magnetometer_x: f32 = 8,
    magnetometer_y: f32 = 9,
    magnetometer_z: f32 = 10,
});

impl Imu<'_> {
    pub fn timestamp(&self) -> i64 {
        scalar!(self, i64, 0, 0)
    }
    /// Field `n` (1..=10) as f32: temperature, then accelerometer, gyroscope, magnetometer XYZ.
    pub fn float(&self, n: u16) -> f32 {
        scalar!(self, f32, n, 0.0)
    }
}

fb_table!(ImuPacket { elements: ForwardsUOffset<Vector<'_, ForwardsUOffset<Imu<'_>>>> = 0 });

impl<'a> ImuPacket<'a> {
    pub fn elements(&self) -> Option<Vector<'a, ForwardsUOffset<Imu<'a>>>> {
        offset!(self, Vector<'a, ForwardsUOffset<Imu<'a>>>, 0)
    }
}

fb_table!(Trigger { timestamp: i64 = 0, kind: i8 = 1 });

impl Trigger<'_> {
    pub fn timestamp(&self) -> i64 {
        scalar!(self, i64, 0, 0)
    }
    pub fn kind(&self) -> i8 {
        scalar!(self, i8, 1, 0)
    }
}

fb_table!(TriggerPacket { elements: ForwardsUOffset<Vector<'_, ForwardsUOffset<Trigger<'_>>>> = 0 });

impl<'a> TriggerPacket<'a> {
    pub fn elements(&self) -> Option<Vector<'a, ForwardsUOffset<Trigger<'a>>>> {
        offset!(self, Vector<'a, ForwardsUOffset<Trigger<'a>>>, 0)
    }
}

/// Verifies a size-prefixed buffer (u32 length, then the flatbuffer) and returns its root table.
pub fn size_prefixed_root<'a, T>(buf: &'a [u8]) -> Result<T::Inner, InvalidFlatbuffer>
where
    T: Follow<'a> + Verifiable + 'a,
{
    let opts = VerifierOptions { max_apparent_size: usize::MAX, ..VerifierOptions::default() };
    flatbuffers::size_prefixed_root_with_opts::<T>(&opts, buf)
}

/// The 4-byte file identifier of a size-prefixed buffer, if it has room for one.
pub fn identifier(buf: &[u8]) -> Option<&[u8]> {
    buf.get(8..12)
}
