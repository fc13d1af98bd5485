//! safed: event-camera + RGB recognition (SAFE) as a service. The library holds every stage so
//! that the daemon, the trainer and the tests share one implementation.

pub mod accumulate;
pub mod capture;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod demo;
pub mod events;
pub mod infer;
pub mod pipeline;
pub mod plot;
pub mod reload;
pub mod report;
pub mod ring;
pub mod ros2;
pub mod service;
pub mod sink;
pub mod sync;
pub mod view;
