//! Injected disk faults: a failing or slow write or sync, for tests of what the gateway does
//! when the store cannot make a grant durable.

use std::io;

/// A step of a commit round where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Before a round's bytes are written to a file.
    Write,
    /// Before a written file is `fdatasync`ed.
    Sync,
}

/// Injects disk faults into the writer, so tests can show what the gateway does on a disk
/// that fails or is slow without needing one. Called on the writer's thread: an `Err` is
/// taken exactly as the real write or sync failing there (a failed write is rolled back and
/// later rounds go on; a failed sync stops the journal), and a hook that sleeps is a slow
/// disk.
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    /// Called before `step`; an error fails the step.
    fn before(&self, step: Step) -> io::Result<()>;
}

/// Runs the injected fault of `step`, if any.
pub(super) fn inject(faults: Option<&dyn FaultHook>, step: Step) -> io::Result<()> {
    faults.map_or(Ok(()), |f| f.before(step))
}
