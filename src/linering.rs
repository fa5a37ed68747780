//! Console lines from a PD that has no console of its own (the hostile client): it writes whole
//! lines into a page shared with the VMM and signals it; the VMM, the one writer of the board
//! UART in every config, prints each line whole, so lines of different PDs never mix (a PD
//! writing the UART itself would be cut short mid-line by the higher-priority VMM).
//!
//! The writer is not trusted. The reader keeps its own count of lines taken (the shared one is
//! only for the writer to wait on), copies at most one slot per line, turns every byte that is
//! not printable ASCII into `?`, and takes at most [`LINE_SLOTS`] lines per call.
use core::sync::atomic::{AtomicU64, Ordering};

/// Lines the ring holds.
pub const LINE_SLOTS: usize = 16;
/// Bytes of a line; longer lines are cut.
pub const LINE_BYTES: usize = 160;
const LINE_WORDS: usize = LINE_BYTES / 8;

#[repr(C)]
#[derive(Debug, Default)]
struct Slot {
    len: AtomicU64,
    words: [AtomicU64; LINE_WORDS],
}

/// The shared page.
#[repr(C)]
#[derive(Debug, Default)]
pub struct LineRing {
    /// Lines written so far (the writer's count).
    written: AtomicU64,
    /// Lines the reader has taken so far (the reader's count, published for the writer).
    taken: AtomicU64,
    slots: [Slot; LINE_SLOTS],
}

const _: () = assert!(core::mem::size_of::<LineRing>() <= 4096);

/// The ring holds [`LINE_SLOTS`] lines the reader has not taken yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingFull;

impl LineRing {
    /// The writer's side: queues `line`, cut at [`LINE_BYTES`].
    pub fn push(&self, line: &[u8]) -> Result<(), RingFull> {
        let written = self.written.load(Ordering::Relaxed);
        if written.wrapping_sub(self.taken.load(Ordering::Acquire)) >= LINE_SLOTS as u64 {
            return Err(RingFull);
        }
        let slot = &self.slots[written as usize % LINE_SLOTS];
        let line = &line[..line.len().min(LINE_BYTES)];
        for (w, chunk) in slot.words.iter().zip(line.chunks(8)) {
            let mut bytes = [0; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            w.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        slot.len.store(line.len() as u64, Ordering::Relaxed);
        self.written
            .store(written.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// The writer's side: lines queued that the reader has not taken yet.
    pub fn pending(&self) -> bool {
        self.written.load(Ordering::Relaxed) != self.taken.load(Ordering::Acquire)
    }
}

/// The reader's side (the VMM).
#[derive(Debug, Default)]
pub struct LineReader {
    taken: u64,
    /// Lines lost because the writer's count ran more than a ring ahead, or went back.
    pub skipped: u64,
}

impl LineReader {
    /// The next line, as printable ASCII in `buf`, if the writer queued one.
    pub fn pop<'a>(&mut self, ring: &LineRing, buf: &'a mut [u8; LINE_BYTES]) -> Option<&'a str> {
        let written = ring.written.load(Ordering::Acquire);
        let ahead = written.wrapping_sub(self.taken);
        if ahead == 0 {
            return None;
        }
        if ahead > LINE_SLOTS as u64 {
            // Not what a writer that waits for us does (or its count went back): take up
            // again at the oldest slot it can have written.
            let from = written.wrapping_sub(LINE_SLOTS as u64);
            self.skipped = self
                .skipped
                .saturating_add(from.wrapping_sub(self.taken).min(u64::MAX / 2));
            self.taken = from;
        }
        let slot = &ring.slots[self.taken as usize % LINE_SLOTS];
        let len = (slot.len.load(Ordering::Relaxed) as usize).min(LINE_BYTES);
        for (chunk, w) in buf.chunks_mut(8).zip(&slot.words) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        self.taken = self.taken.wrapping_add(1);
        ring.taken.store(self.taken, Ordering::Release);
        let line = &mut buf[..len];
        for b in line.iter_mut() {
            if !(b' '..=b'~').contains(b) {
                *b = b'?';
            }
        }
        // Printable ASCII is UTF-8.
        core::str::from_utf8(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop_all(r: &mut LineReader, ring: &LineRing) -> Vec<String> {
        let mut buf = [0; LINE_BYTES];
        let mut out = Vec::new();
        while let Some(line) = r.pop(ring, &mut buf) {
            out.push(line.to_owned());
        }
        out
    }

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let ring = LineRing::default();
        let mut r = LineReader::default();
        assert_eq!(pop_all(&mut r, &ring), Vec::<String>::new());
        ring.push(b"step 1/2: a ok").unwrap();
        ring.push(b"").unwrap();
        ring.push(b"PASS steps=2").unwrap();
        assert!(ring.pending());
        assert_eq!(
            pop_all(&mut r, &ring),
            ["step 1/2: a ok", "", "PASS steps=2"]
        );
        assert!(!ring.pending());
        assert_eq!(r.skipped, 0);
    }

    #[test]
    fn the_writer_waits_for_the_reader() {
        let ring = LineRing::default();
        let mut r = LineReader::default();
        for i in 0..LINE_SLOTS {
            ring.push(format!("line {i}").as_bytes()).unwrap();
        }
        assert_eq!(ring.push(b"one too many"), Err(RingFull));
        let mut buf = [0; LINE_BYTES];
        assert_eq!(r.pop(&ring, &mut buf), Some("line 0"));
        ring.push(b"line 16").unwrap();
        let rest = pop_all(&mut r, &ring);
        assert_eq!(rest.len(), LINE_SLOTS);
        assert_eq!(rest.last().map(String::as_str), Some("line 16"));
    }

    #[test]
    fn long_lines_are_cut_and_bytes_made_printable() {
        let ring = LineRing::default();
        let mut r = LineReader::default();
        ring.push(&[b'x'; 200]).unwrap();
        ring.push(b"bell\x07 nl\n esc\x1b[2J \xff").unwrap();
        let lines = pop_all(&mut r, &ring);
        assert_eq!(lines[0], "x".repeat(LINE_BYTES));
        assert_eq!(lines[1], "bell? nl? esc?[2J ?");
    }

    #[test]
    fn a_lying_writer_costs_the_reader_nothing() {
        let ring = LineRing::default();
        let mut r = LineReader::default();
        // Count far ahead, a length past the slot: at most one ring of lines, each cut.
        ring.written.store(1 << 40, Ordering::Relaxed);
        for s in &ring.slots {
            s.len.store(u64::MAX, Ordering::Relaxed);
        }
        let lines = pop_all(&mut r, &ring);
        assert_eq!(lines.len(), LINE_SLOTS);
        assert!(lines.iter().all(|l| l.len() == LINE_BYTES));
        assert_eq!(r.skipped, (1 << 40) - LINE_SLOTS as u64);
        // The count goes back: one ring at most again, then nothing.
        ring.written.store(5, Ordering::Relaxed);
        assert_eq!(pop_all(&mut r, &ring).len(), LINE_SLOTS);
        assert_eq!(pop_all(&mut r, &ring).len(), 0);
        // The shared `taken` is only the writer's business.
        ring.taken.store(0, Ordering::Relaxed);
        assert_eq!(pop_all(&mut r, &ring).len(), 0);
    }
}
