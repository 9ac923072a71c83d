//! The agent's memory ceiling, enforced by the agent on itself: a global allocator
//! over the system's that counts the bytes the process holds and refuses to go past a
//! hard ceiling ([`DEFAULT_CEILING`], 64 MiB). An allocation that would pass it ends
//! the process at once with [`EXIT_MEMORY_CEILING`] and one line on stderr (journald,
//! at error priority under systemd); the unit's `Restart=on-failure` starts it again.
//!
//! Why an allocator and not `RLIMIT_DATA` (ARCHITECTURE.md, Decisions): a resource
//! limit is inherited by every child, and the agent's children are apt, dpkg, rpm and
//! the maintainer scripts of every package (dracut, update-grub, a JVM's
//! ca-certificates hook); a limit right for the agent would kill an install. It also
//! counts address space, not use: each tokio or glibc thread's stack and malloc
//! arena would count whether touched or not. The allocator counts exactly the bytes
//! Rust code asked for, in this process only. Only the binary installs it
//! (`#[global_allocator]` in `main.rs`); the library and its tests do not depend on it.
//!
//! The count is one relaxed atomic add per allocation and one subtract per free; the
//! peak is kept too, for the tests and the benchmark that measure a scan's need.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The agent's ceiling: 64 MiB of heap. A scan of 2,000 packages holds well under a
/// tenth of it (docs/agent-resources.md gives the measured peak); the largest
/// legitimate use is a child's output captured at its 8 MiB cap on stdout and stderr
/// while a scan's state is held.
pub const DEFAULT_CEILING: usize = 64 * 1024 * 1024;

/// The exit status of an agent that reached its ceiling (`EX_TEMPFAIL`): systemd's
/// `Restart=on-failure` restarts it; only 78 (revoked) is exempt.
pub const EXIT_MEMORY_CEILING: i32 = 75;

/// A counting allocator with a hard ceiling, over [`System`].
#[derive(Debug)]
pub struct Ceiling {
    limit: AtomicUsize,
    in_use: AtomicUsize,
    peak: AtomicUsize,
    journald: AtomicBool,
}

impl Ceiling {
    /// An allocator that lets the process hold at most `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        Ceiling {
            limit: AtomicUsize::new(limit),
            in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            journald: AtomicBool::new(false),
        }
    }

    /// Changes the ceiling (bytes). A ceiling below what is in use already takes
    /// effect at the next allocation.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The ceiling in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// The most bytes held at once since the start or the last [`Ceiling::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak measurement from what is held now.
    pub fn reset_peak(&self) {
        self.peak.store(self.in_use(), Ordering::Relaxed);
    }

    /// Reads the environment once: under systemd (`JOURNAL_STREAM` set) the last words
    /// carry journald's error priority prefix `<3>`. Call it at start, before any
    /// thread.
    pub fn detect_journald(&self) {
        let on = std::env::var_os("JOURNAL_STREAM").is_some();
        self.journald.store(on, Ordering::Relaxed);
    }

    fn reserve(&self, size: usize) -> bool {
        let before = self.in_use.fetch_add(size, Ordering::Relaxed);
        let now = before.saturating_add(size);
        if now > self.limit.load(Ordering::Relaxed) {
            self.in_use.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        self.peak.fetch_max(now, Ordering::Relaxed);
        true
    }

    fn release(&self, size: usize) {
        self.in_use.fetch_sub(size, Ordering::Relaxed);
    }

    /// The last words and the exit. Nothing here allocates: the line is formatted
    /// into a stack buffer and written with one `write(2)`, and `_exit` runs no
    /// destructor and no `atexit` handler that could allocate again.
    #[allow(unsafe_code)]
    fn exceeded(&self, size: usize) -> ! {
        use std::io::Write;
        let mut buf = [0u8; 320];
        let len = {
            let mut w = std::io::Cursor::new(&mut buf[..]);
            let prefix = if self.journald.load(Ordering::Relaxed) {
                "<3>"
            } else {
                ""
            };
            let _ = writeln!(
                w,
                "{prefix}patchctl-agent: memory ceiling reached: {size} more bytes would pass the agent's ceiling of {} MiB ({} bytes held); exiting with status {EXIT_MEMORY_CEILING} so that the service manager restarts it",
                self.limit() / (1024 * 1024),
                self.in_use(),
            );
            w.position() as usize
        };
        // SAFETY: `write` reads `len` bytes of a live stack buffer; `_exit` ends the
        // process without returning.
        unsafe {
            nix::libc::write(2, buf.as_ptr().cast(), len);
            nix::libc::_exit(EXIT_MEMORY_CEILING)
        }
    }
}

// SAFETY: every method hands the layout to `System` unchanged and only adds counting
// around it; a refused allocation never returns (the process exits).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Ceiling {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !self.reserve(layout.size()) {
            self.exceeded(layout.size());
        }
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            self.release(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !self.reserve(layout.size()) {
            self.exceeded(layout.size());
        }
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            self.release(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        self.release(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !self.reserve(new_size - old) {
            self.exceeded(new_size - old);
        }
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                self.release(new_size - old);
            }
        } else if new_size < old {
            self.release(old - new_size);
        }
        p
    }
}
