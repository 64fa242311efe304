//! Segment rollover off the writer's thread.
//!
//! A rollover has three slow parts: making the next segment file (create, preallocate, map,
//! fault in every page, make its directory entry durable), sealing the full one (syncing it
//! whole), and naming the next one durably. With a background thread the writer does none of
//! them: it takes a spare that was prepared ahead, writes its header and goes on appending, and
//! queues a [`SealJob`] that the thread runs behind it:
//!
//! 1. sync the full segment whole;
//! 2. sync the new segment's header (unless the writer's first `fsync` commit there already did);
//! 3. rename the spare to its segment name ([`Storage::install_spare`]);
//! 4. sync the directory.
//!
//! The thread runs jobs one at a time in the order they were queued, so a segment is only ever
//! given its name after every segment before it was synced whole: the invariant recovery relies
//! on (see the crate docs). Without a thread ([`Rollover::Inline`]) the writer runs the same
//! steps itself, in the same order, before `append` returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{IoOp, JournalError};
use crate::layout::SEGMENT_HEADER_LEN_BYTES;
use crate::storage::{SegmentStorage, Storage};

/// How every journal background thread's name ends ([`crate::JournalConfig::background_thread_name`]).
pub const BACKGROUND_THREAD_SUFFIX: &str = "-seal";

/// Spares the background thread keeps prepared ahead. Two, so that a slow seal of one segment
/// (it writes the whole segment to disk) does not hold up the spare for the next rollover but
/// one: the writer waits for a spare only if the disk falls a whole segment behind.
pub(crate) const SPARES_AHEAD: usize = 2;
/// Jobs queued at a time: a seal and a spare per rollover the thread is behind. Preallocated, so
/// a rollover does not allocate unless the thread is several rollovers behind.
const JOB_QUEUE_CAPACITY: usize = 8;

/// Whether the calling thread is a journal's background thread (the fault-injecting storage
/// holds such syncs on request).
pub(crate) fn on_background_thread() -> bool {
    std::thread::current().name().is_some_and(|n| n.ends_with(BACKGROUND_THREAD_SUFFIX))
}

/// The work that makes the next segment official once the writer has moved on to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealJob {
    /// The full segment to sync whole.
    pub(crate) full_base_seq: u64,
    /// The spare the writer moved on to, with its header written.
    pub(crate) spare_id: u64,
    /// The segment name it gets.
    pub(crate) base_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Prepare {
        spare_id: u64,
        len_bytes: u64,
    },
    /// A spare kept from an earlier process: reused if blank, else removed and `fallback_id`
    /// prepared instead.
    Reuse {
        spare_id: u64,
        fallback_id: u64,
        len_bytes: u64,
    },
    Seal(SealJob),
}

impl Job {
    /// Makes a spare (rather than sealing a segment).
    fn is_spare(&self) -> bool {
        matches!(self, Job::Prepare { .. } | Job::Reuse { .. })
    }
}

/// Runs the four steps of a [`SealJob`] on `storage`. Step 2 is skipped when
/// `header_synced_base_seq` says the writer has already synced the new segment from its start
/// (its first commit at `fsync` does), which takes one sync off what that commit waits for.
pub(crate) fn seal<S: Storage>(storage: &mut S, job: SealJob, header_synced_base_seq: u64) -> Result<(), JournalError> {
    let full_base_seq = Some(job.full_base_seq);
    let mut full = storage
        .open_segment(job.full_base_seq)
        .map_err(|err| JournalError::io(IoOp::OpenSegment, full_base_seq, err))?;
    let full_len_bytes = full.bytes().len();
    full.sync_range(0, full_len_bytes).map_err(|err| JournalError::io(IoOp::Sync, full_base_seq, err))?;
    drop(full);
    let base_seq = Some(job.base_seq);
    if header_synced_base_seq < job.base_seq {
        let mut next =
            storage.open_spare(job.spare_id).map_err(|err| JournalError::io(IoOp::OpenSpare, base_seq, err))?;
        next.sync_range(0, SEGMENT_HEADER_LEN_BYTES).map_err(|err| JournalError::io(IoOp::Sync, base_seq, err))?;
    }
    storage
        .install_spare(job.spare_id, job.base_seq)
        .map_err(|err| JournalError::io(IoOp::InstallSpare, base_seq, err))?;
    storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))
}

fn create_spare<S: Storage>(storage: &mut S, spare_id: u64, len_bytes: u64) -> Result<S::Segment, JournalError> {
    storage.create_spare(spare_id, len_bytes).map_err(|err| JournalError::io(IoOp::CreateSpare, None, err))
}

/// A spare made ahead, on the background thread: the file, and its read-only twin when the
/// storage can make one (mapping it is then also off the writer's thread).
fn prepare<S: Storage>(storage: &mut S, id: u64, len_bytes: u64) -> Result<Spare<S::Segment>, JournalError> {
    let segment = create_spare(storage, id, len_bytes)?;
    ready(id, segment)
}

/// The spare with its read-only twin.
fn ready<G: SegmentStorage>(id: u64, segment: G) -> Result<Spare<G>, JournalError> {
    let read_only = segment.read_only_twin().map_err(|err| JournalError::io(IoOp::CreateSpare, None, err))?;
    Ok(Spare { id, segment, read_only })
}

/// Spare `id` kept from an earlier process, if every byte of it is zero; otherwise it is
/// removed and a new spare `fallback_id` made.
fn reuse<S: Storage>(
    storage: &mut S,
    (id, fallback_id): (u64, u64),
    len_bytes: u64,
) -> Result<Spare<S::Segment>, JournalError> {
    if let Ok(Some(segment)) = storage.reuse_spare(id, len_bytes) {
        return ready(id, segment);
    }
    match storage.remove_spare(id) {
        Ok(()) => storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(JournalError::io(IoOp::RemoveSpare, None, err)),
    }
    prepare(storage, fallback_id, len_bytes)
}

/// A spare segment for the writer to move on to.
#[derive(Debug)]
pub(crate) struct Spare<G> {
    /// Its spare id (its file name until it is installed).
    pub(crate) id: u64,
    /// The writable handle.
    pub(crate) segment: G,
    /// A read-only twin made ahead (see [`SegmentStorage::read_only_twin`]), for reading the
    /// segment once it is full.
    pub(crate) read_only: Option<G>,
}

/// Who does the slow parts of a rollover.
#[derive(Debug)]
pub(crate) enum Rollover<G> {
    /// The writer itself, before `append` returns: deterministic, for tests and tools.
    Inline {
        next_spare_id: u64,
        /// Newest segment with its name durable and every segment before it synced whole.
        installed_base_seq: u64,
    },
    /// A background thread.
    Background(Background<G>),
}

impl<G: SegmentStorage + Send + 'static> Rollover<G> {
    /// Starts rollover work for a journal whose segments up to `installed_base_seq` are all
    /// installed; spare ids start at `next_spare_id`. With `thread` (`Some(cpu)`), spawns the
    /// background thread (pinned to `cpu` if given) and has it prepare spares right away,
    /// reusing the `blank` ones an earlier process left (see [`Storage::reuse_spare`]).
    pub(crate) fn start<S: Storage<Segment = G>>(
        storage: &S,
        thread: Option<(Option<usize>, &'static str)>,
        next_spare_id: u64,
        installed_base_seq: u64,
        (spare_len_bytes, blank): (u64, &[u64]),
    ) -> Result<Self, JournalError> {
        let Some((cpu, name)) = thread else {
            return Ok(Rollover::Inline { next_spare_id, installed_base_seq });
        };
        let helper = storage.helper().map_err(|err| JournalError::io(IoOp::OpenStorage, None, err))?;
        let mut background = Background::spawn(helper, (cpu, name), next_spare_id, installed_base_seq)?;
        for i in 0..SPARES_AHEAD {
            let spare_id = background.next_spare_id;
            background.next_spare_id += 1;
            let job = match blank.get(i) {
                Some(&kept) => Job::Reuse { spare_id: kept, fallback_id: spare_id, len_bytes: spare_len_bytes },
                None => Job::Prepare { spare_id, len_bytes: spare_len_bytes },
            };
            background.queue(&[job]);
        }
        Ok(Rollover::Background(background))
    }

    /// A fresh spare of `len_bytes` and its id: the oldest one prepared ahead (waiting for it if
    /// none is ready yet), or, inline, one made now.
    pub(crate) fn take_spare<S: Storage<Segment = G>>(
        &mut self,
        storage: &mut S,
        len_bytes: u64,
    ) -> Result<Spare<G>, JournalError> {
        match self {
            Rollover::Inline { next_spare_id, .. } => {
                let id = *next_spare_id;
                *next_spare_id += 1;
                Ok(Spare { id, segment: create_spare(storage, id, len_bytes)?, read_only: None })
            }
            Rollover::Background(background) => background.take_spare(),
        }
    }

    /// Seals the full segment and installs the next one (see [`SealJob`]); in the background,
    /// also has the next spare prepared.
    pub(crate) fn seal<S: Storage<Segment = G>>(
        &mut self,
        storage: &mut S,
        job: SealJob,
        spare_len_bytes: u64,
    ) -> Result<(), JournalError> {
        match self {
            Rollover::Inline { installed_base_seq, .. } => {
                // Inline, the seal runs before the writer could have synced anything new.
                seal(storage, job, 0)?;
                *installed_base_seq = job.base_seq;
                Ok(())
            }
            Rollover::Background(background) => {
                let prepare = Job::Prepare { spare_id: background.next_spare_id, len_bytes: spare_len_bytes };
                background.next_spare_id += 1;
                // The seal first: a commit at `fsync` may be waiting for it; the spare is not
                // needed before the next rollover.
                background.queue(&[Job::Seal(job), prepare]);
                Ok(())
            }
        }
    }

    /// Takes the writer's writable handle of a segment it has filled (it reads the segment
    /// through a fresh handle from now on). Writing back a page that a writable mapping maps
    /// costs a TLB shootdown on every CPU the process runs on, page by page (measured: most of
    /// the sealing thread's time on a 2-vCPU VM); once no writable mapping of the segment is
    /// left, its seal cleans the pages without one. Inline, the handle goes at once; in the
    /// background, the thread drops it before its next job, off the writer's thread.
    pub(crate) fn retire(&mut self, writable: G) {
        match self {
            Rollover::Inline { .. } => drop(writable),
            Rollover::Background(background) => background.shared.lock().retired.push(writable),
        }
    }

    /// Tells the background thread that the writer has synced segment `base_seq` from its
    /// start, header included.
    #[inline]
    pub(crate) fn header_synced(&self, base_seq: u64) {
        if let Rollover::Background(background) = self {
            background.shared.header_synced_base_seq.fetch_max(base_seq, Ordering::Release);
        }
    }

    /// Newest segment whose name is durable with every segment before it synced whole.
    #[inline]
    pub(crate) fn installed_base_seq(&self) -> u64 {
        match self {
            Rollover::Inline { installed_base_seq, .. } => *installed_base_seq,
            Rollover::Background(background) => background.shared.installed_base_seq.load(Ordering::Acquire),
        }
    }

    /// Waits until segment `base_seq` is installed (see [`Rollover::installed_base_seq`]).
    pub(crate) fn wait_installed(&self, base_seq: u64) -> Result<(), JournalError> {
        match self {
            Rollover::Inline { .. } => Ok(()),
            Rollover::Background(background) => {
                background.wait_until(|shared, _| shared.installed_base_seq.load(Ordering::Acquire) >= base_seq)
            }
        }
    }

    /// The background thread's failure, if it had one. One atomic load when it had none.
    #[inline]
    pub(crate) fn failure(&self) -> Option<JournalError> {
        match self {
            Rollover::Inline { .. } => None,
            Rollover::Background(background) => background.failure(),
        }
    }

    /// Waits until the background thread has nothing left to do, and reports its failure.
    pub(crate) fn settle(&self) -> Result<(), JournalError> {
        match self {
            Rollover::Inline { .. } => Ok(()),
            Rollover::Background(background) => background.wait_until(|_, state| state.jobs.is_empty() && !state.busy),
        }
    }
}

/// The writer's end of the background thread.
#[derive(Debug)]
pub(crate) struct Background<G> {
    shared: Arc<Shared<G>>,
    thread: Option<JoinHandle<()>>,
    next_spare_id: u64,
}

#[derive(Debug)]
struct Shared<G> {
    state: Mutex<State<G>>,
    /// The thread waits on it for jobs.
    work: Condvar,
    /// The writer waits on it for results.
    done: Condvar,
    /// Set with [`State::failure`], so the writer can check it with one load per call.
    failed: AtomicBool,
    /// See [`Rollover::installed_base_seq`].
    installed_base_seq: AtomicU64,
    /// See [`Rollover::header_synced`].
    header_synced_base_seq: AtomicU64,
}

#[derive(Debug)]
struct State<G> {
    jobs: VecDeque<Job>,
    /// Prepared spares, oldest first.
    spares: VecDeque<Spare<G>>,
    /// Writable handles of full segments the writer has let go, unmapped here before the seal
    /// (see [`Rollover::retire`]).
    retired: Vec<G>,
    /// Running a job right now.
    busy: bool,
    failure: Option<JournalError>,
    /// The journal is being dropped: finish the queued seals and exit.
    stop: bool,
}

impl<G> Shared<G> {
    fn lock(&self) -> MutexGuard<'_, State<G>> {
        // A panic on the background thread is reported as its failure (see `ExitGuard`), so a
        // poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<G: SegmentStorage + Send + 'static> Background<G> {
    fn spawn<S: Storage<Segment = G> + Send + 'static>(
        storage: S,
        (cpu, name): (Option<usize>, &'static str),
        next_spare_id: u64,
        installed_base_seq: u64,
    ) -> Result<Self, JournalError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jobs: VecDeque::with_capacity(JOB_QUEUE_CAPACITY),
                spares: VecDeque::with_capacity(SPARES_AHEAD),
                retired: Vec::with_capacity(JOB_QUEUE_CAPACITY),
                busy: false,
                failure: None,
                stop: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            failed: AtomicBool::new(false),
            installed_base_seq: AtomicU64::new(installed_base_seq),
            header_synced_base_seq: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(storage, cpu, &thread_shared))
            .map_err(|err| JournalError::io(IoOp::StartBackground, None, err))?;
        Ok(Background { shared, thread: Some(thread), next_spare_id })
    }

    fn queue(&mut self, jobs: &[Job]) {
        let mut state = self.shared.lock();
        state.jobs.extend(jobs);
        drop(state);
        self.shared.work.notify_one();
    }

    fn take_spare(&mut self) -> Result<Spare<G>, JournalError> {
        let mut state = self.shared.lock();
        loop {
            if let Some(err) = &state.failure {
                return Err(err.clone());
            }
            if let Some(spare) = state.spares.pop_front() {
                return Ok(spare);
            }
            state = self.shared.done.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn failure(&self) -> Option<JournalError> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        self.shared.lock().failure.clone()
    }

    /// Waits until `ready` holds or the thread failed.
    fn wait_until(&self, mut ready: impl FnMut(&Shared<G>, &State<G>) -> bool) -> Result<(), JournalError> {
        let mut state = self.shared.lock();
        loop {
            if let Some(err) = &state.failure {
                return Err(err.clone());
            }
            if ready(&self.shared, &state) {
                return Ok(());
            }
            state = self.shared.done.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl<G> Drop for Background<G> {
    /// Lets the thread finish the queued seals (so a clean shutdown leaves every segment
    /// installed) and joins it.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic there was already turned into a failure; nothing more to report here.
            let _ = thread.join();
        }
    }
}

/// Reports a panic on the background thread as its failure, so the writer never waits forever.
struct ExitGuard<'a, G>(&'a Shared<G>);

impl<G> Drop for ExitGuard<'_, G> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.lock();
            let err = std::io::Error::other("the journal's background thread panicked");
            state.failure.get_or_insert(JournalError::io(IoOp::StartBackground, None, err));
            self.0.failed.store(true, Ordering::Release);
            drop(state);
            self.0.done.notify_all();
        }
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "background_cpu is past CPU_SETSIZE"));
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it (bounds checked
    // above); sched_setaffinity reads it for the calling thread only.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The background thread: runs jobs in order until told to stop or a job fails. A failure to
/// pin it is its first failure.
fn run<S: Storage>(mut storage: S, cpu: Option<usize>, shared: &Shared<S::Segment>) {
    let _guard = ExitGuard(shared);
    if let Some(Err(err)) = cpu.map(pin_to) {
        let mut state = shared.lock();
        state.failure = Some(JournalError::io(IoOp::StartBackground, None, err));
        shared.failed.store(true, Ordering::Release);
        drop(state);
        shared.done.notify_all();
        return;
    }
    loop {
        let job = {
            let mut state = shared.lock();
            state = shared
                .work
                .wait_while(state, |state| state.jobs.is_empty() && !state.stop)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Stopping: seals still run (they name segments the log already uses); spares not.
            while state.stop && state.jobs.front().is_some_and(Job::is_spare) {
                state.jobs.pop_front();
            }
            // Seals run in order among themselves; a spare may overtake them when none is
            // ready, because the writer waits for a spare but not for a seal (except a commit at
            // `fsync`, which waits for one seal, not for the spare).
            let spare_first =
                if state.spares.is_empty() && !state.stop { state.jobs.iter().position(Job::is_spare) } else { None };
            let next = match spare_first {
                Some(index) => state.jobs.remove(index),
                None => state.jobs.pop_front(),
            };
            let Some(job) = next else { return };
            state.busy = true;
            let retired = std::mem::take(&mut state.retired);
            drop(state);
            // Unmapping is the slow part of letting a mapping go (its page tables are torn
            // down); it happens here, before the seal cleans those pages.
            drop(retired);
            job
        };
        let outcome = match job {
            Job::Prepare { spare_id, len_bytes } => prepare(&mut storage, spare_id, len_bytes).map(|spare| {
                shared.lock().spares.push_back(spare);
            }),
            Job::Reuse { spare_id, fallback_id, len_bytes } => reuse(&mut storage, (spare_id, fallback_id), len_bytes)
                .map(|spare| {
                    shared.lock().spares.push_back(spare);
                }),
            Job::Seal(seal_job) => seal(&mut storage, seal_job, shared.header_synced_base_seq.load(Ordering::Acquire))
                .map(|()| {
                    shared.installed_base_seq.store(seal_job.base_seq, Ordering::Release);
                }),
        };
        let mut state = shared.lock();
        state.busy = false;
        let failed = outcome.is_err();
        if let Err(err) = outcome {
            state.failure = Some(err);
            state.jobs.clear();
            shared.failed.store(true, Ordering::Release);
        }
        drop(state);
        shared.done.notify_all();
        if failed {
            return;
        }
    }
}
