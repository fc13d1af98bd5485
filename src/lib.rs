//! safed: event-camera + RGB recognition (SAFE) as a service. The library holds every stage so
//! that the daemon, the trainer and the tests share one implementation.

pub mod accumulate;
pub mod cli;
pub mod events;
pub mod infer;
