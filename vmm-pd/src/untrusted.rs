//! What the VMM does for PDs it does not trust (the hostile client): prints their console lines
//! whole, prefixed so that they cannot pass for the VMM's own, and refuses their protected calls
//! (`SavebackError::NotFpService`), logging the first refusal per channel. Both wait while a
//! guest line is open, so that they never split one.
use lazyfp::linering::{LineReader, LineRing, LINE_BYTES, LINE_SLOTS};
use lazyfp::SavebackError;

pub struct Untrusted {
    ring: &'static LineRing,
    reader: LineReader,
    /// Channels whose refusal was logged (bit per channel).
    logged: u64,
    /// A first refusal not logged yet.
    unlogged: Option<SavebackError>,
}

impl Untrusted {
    pub fn new(ring: &'static LineRing) -> Self {
        Self {
            ring,
            reader: LineReader::default(),
            logged: 0,
            unlogged: None,
        }
    }

    /// The lines queued so far; at most one ring's worth per notification. None while a guest
    /// line is open: they wait in the ring (the client signals again) rather than split it.
    pub fn print_lines(&mut self) {
        if crate::console::guest_mid_line() {
            return;
        }
        let mut buf = [0; LINE_BYTES];
        for _ in 0..LINE_SLOTS {
            match self.reader.pop(self.ring, &mut buf) {
                Some(line) => say!("lazyfp: hostile-client {line}"),
                None => break,
            }
        }
        if let Some(e) = self.unlogged.take() {
            say!("lazyfp: vmm: {e}: refused (logged once per channel)");
        }
    }

    /// A protected call refused with `e` on channel `ch`; logged with the next lines.
    pub fn refused(&mut self, ch: u8, e: SavebackError) {
        let bit = 1u64 << (ch % 64);
        if self.logged & bit == 0 {
            self.logged |= bit;
            self.unlogged = self.unlogged.or(Some(e));
        }
    }
}
