//! The seccomp-bpf allowlist: the system calls a running plugin process needs, found by tracing
//! runners under real runs (frames over both transports, traps, deadlines, memory limits,
//! restarts), each with the reason it is needed. Anything else kills the process (SIGSYS),
//! except the few calls listed as failing softly, where library code probes and copes.
//!
//! The filter is built once, from [`RULES`], right before it is installed; it also refuses the
//! x32 ABI and any other architecture's calling convention.

use super::names::SECCOMP;
use super::privileges::{errno_name, errno_symbol};
use super::{Layer, State};
use std::io;

/// What the filter does with one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Allow,
    /// Fails with this errno instead of killing: a library path that must fail softly.
    Errno(i32),
    /// Allowed when argument `arg` has one of `bits` set; otherwise kills.
    IfBitSet {
        arg: u8,
        bits: u32,
    },
    /// Allowed unless argument `arg` has all of `bits` set (W^X for memory protections).
    UnlessAllBits {
        arg: u8,
        bits: u32,
    },
    /// Allowed when argument `arg` is one of `values`; otherwise `else_errno` (or kills if 0).
    IfOneOf {
        arg: u8,
        values: &'static [u32],
        else_errno: i32,
    },
    /// Allowed when argument `arg` is this process's id; otherwise kills.
    IfOwnPid {
        arg: u8,
    },
    /// Kills when any `(arg, bits)` pair has all its bits set in that argument; else allowed.
    UnlessAnyAllBits(&'static [(u8, u32)]),
    /// Allowed when argument `arg`, masked with `mask`, is one of `values`; otherwise kills.
    IfMaskedOneOf {
        arg: u8,
        mask: u32,
        values: &'static [u32],
    },
}

/// One entry of the allowlist.
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    pub name: &'static str,
    pub nr: i64,
    pub rule: Rule,
    pub why: &'static str,
}

macro_rules! syscalls {
    ($($name:ident => $rule:expr, $why:literal;)*) => {
        /// The allowlist (x86-64).
        #[cfg(target_arch = "x86_64")]
        pub const RULES: &[Syscall] = &[
            $(Syscall { name: stringify!($name), nr: paste_nr!($name), rule: $rule, why: $why },)*
        ];
    };
}

macro_rules! paste_nr {
    (read) => {
        libc::SYS_read
    };
    (write) => {
        libc::SYS_write
    };
    (writev) => {
        libc::SYS_writev
    };
    (close) => {
        libc::SYS_close
    };
    (poll) => {
        libc::SYS_poll
    };
    (fcntl) => {
        libc::SYS_fcntl
    };
    (statx) => {
        libc::SYS_statx
    };
    (mmap) => {
        libc::SYS_mmap
    };
    (mprotect) => {
        libc::SYS_mprotect
    };
    (munmap) => {
        libc::SYS_munmap
    };
    (mremap) => {
        libc::SYS_mremap
    };
    (madvise) => {
        libc::SYS_madvise
    };
    (brk) => {
        libc::SYS_brk
    };
    (futex) => {
        libc::SYS_futex
    };
    (clone) => {
        libc::SYS_clone
    };
    (clone3) => {
        libc::SYS_clone3
    };
    (set_robust_list) => {
        libc::SYS_set_robust_list
    };
    (rseq) => {
        libc::SYS_rseq
    };
    (prctl) => {
        libc::SYS_prctl
    };
    (exit) => {
        libc::SYS_exit
    };
    (exit_group) => {
        libc::SYS_exit_group
    };
    (rt_sigaction) => {
        libc::SYS_rt_sigaction
    };
    (rt_sigprocmask) => {
        libc::SYS_rt_sigprocmask
    };
    (rt_sigreturn) => {
        libc::SYS_rt_sigreturn
    };
    (sigaltstack) => {
        libc::SYS_sigaltstack
    };
    (restart_syscall) => {
        libc::SYS_restart_syscall
    };
    (getpid) => {
        libc::SYS_getpid
    };
    (gettid) => {
        libc::SYS_gettid
    };
    (tgkill) => {
        libc::SYS_tgkill
    };
    (clock_gettime) => {
        libc::SYS_clock_gettime
    };
    (gettimeofday) => {
        libc::SYS_gettimeofday
    };
    (clock_nanosleep) => {
        libc::SYS_clock_nanosleep
    };
    (nanosleep) => {
        libc::SYS_nanosleep
    };
    (sched_yield) => {
        libc::SYS_sched_yield
    };
    (sched_getaffinity) => {
        libc::SYS_sched_getaffinity
    };
    (getrandom) => {
        libc::SYS_getrandom
    };
    (getrusage) => {
        libc::SYS_getrusage
    };
    (openat) => {
        libc::SYS_openat
    };
    (seccomp) => {
        libc::SYS_seccomp
    };
}

const PROT_WRITE_EXEC: u32 = (libc::PROT_WRITE | libc::PROT_EXEC) as u32;
/// Memory shared with nobody yet (`MAP_SHARED|MAP_ANONYMOUS`) would escape `RLIMIT_DATA`.
const MMAP_REFUSED: &[(u8, u32)] = &[(2, PROT_WRITE_EXEC), (3, (libc::MAP_SHARED | libc::MAP_ANONYMOUS) as u32)];
/// The futex operations std, glibc and the frame hand-off use, without the private and clock
/// flags: wait, wake, and their bitset forms. No PI, requeue or wake-op.
const FUTEX_OPERATIONS: &[u32] =
    &[libc::FUTEX_WAIT as u32, libc::FUTEX_WAKE as u32, libc::FUTEX_WAIT_BITSET as u32, libc::FUTEX_WAKE_BITSET as u32];
const FUTEX_COMMAND_MASK: u32 = !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u32);
const SECCOMP_OPERATIONS: &[u32] = &[libc::SECCOMP_SET_MODE_FILTER];
const FCNTL_COMMANDS: &[u32] = &[
    libc::F_GETFD as u32,
    libc::F_SETFD as u32,
    libc::F_GETFL as u32,
    libc::F_SETFL as u32,
    libc::F_DUPFD_CLOEXEC as u32,
    libc::F_GET_SEALS as u32,
];
const PRCTL_OPTIONS: &[u32] = &[libc::PR_SET_NAME as u32];

syscalls! {
    read => Rule::Allow, "control messages from the host (fd 3)";
    write => Rule::Allow, "control messages to the host (fd 4); a panic's message to the closed stderr";
    writev => Rule::Allow, "pipe transport: a frame's message and its bytes to the host (fd 4) in one call, from where they lie";
    close => Rule::Allow, "dropping descriptors (the region's second handle, a failed load)";
    poll => Rule::Allow, "checking the control pipe between frames without blocking";
    fcntl => Rule::IfOneOf { arg: 1, values: FCNTL_COMMANDS, else_errno: 0 },
        "F_GETFD/F_SETFD/F_GETFL/F_SETFL/F_DUPFD_CLOEXEC/F_GET_SEALS only: taking the descriptors, a second handle on the region, checking its seals (never F_ADD_SEALS)";
    statx => Rule::Allow,
        "the region's size when it is opened (Region::open); a path leads nowhere where the root is the empty tmpfs";
    mmap => Rule::UnlessAnyAllBits(MMAP_REFUSED),
        "wasm linear memory, loaded code, thread stacks, the shared region; never writable and executable at once";
    mprotect => Rule::UnlessAllBits { arg: 2, bits: PROT_WRITE_EXEC },
        "growing wasm memory, making loaded code executable (RW, then RX), guard pages; never writable and executable at once";
    munmap => Rule::Allow, "freeing memories, code and stacks";
    mremap => Rule::Allow, "the allocator growing a large buffer (frames, messages)";
    madvise => Rule::Allow, "the allocator and thread exit giving pages back; wasmtime resetting memory";
    brk => Rule::Allow, "the allocator's heap";
    futex => Rule::IfMaskedOneOf { arg: 1, mask: FUTEX_COMMAND_MASK, values: FUTEX_OPERATIONS },
        "locks, thread joins, and the frame hand-off with the host: wait and wake only";
    seccomp => Rule::IfOneOf { arg: 0, values: SECCOMP_OPERATIONS, else_errno: 0 },
        "only adding a filter, which can only forbid more: the runner's last one ends thread creation";
    clone => Rule::IfBitSet { arg: 0, bits: libc::CLONE_THREAD as u32 },
        "only with CLONE_THREAD: the deadline watchdog thread; a new process is killed";
    clone3 => Rule::Errno(libc::ENOSYS),
        "fails with ENOSYS: its flags are in memory seccomp cannot read, and glibc then falls back to clone";
    set_robust_list => Rule::Allow, "glibc, when a thread starts";
    rseq => Rule::Allow, "glibc, when a thread starts";
    prctl => Rule::IfOneOf { arg: 0, values: PRCTL_OPTIONS, else_errno: libc::EPERM },
        "PR_SET_NAME only (naming the watchdog thread); other options fail with EPERM";
    exit => Rule::Allow, "a thread ends";
    exit_group => Rule::Allow, "the process ends";
    rt_sigaction => Rule::Allow, "wasmtime's trap handlers (SIGSEGV, SIGILL, SIGFPE, SIGBUS); abort() resetting SIGABRT";
    rt_sigprocmask => Rule::Allow, "thread start, trap handling and abort() mask signals";
    rt_sigreturn => Rule::Allow, "returning from a trap handler";
    sigaltstack => Rule::Allow, "wasmtime's per-thread signal stack for trap handlers";
    restart_syscall => Rule::Allow, "the kernel resuming a sleep interrupted by a signal";
    getpid => Rule::Allow, "abort() raising SIGABRT at itself";
    gettid => Rule::Allow, "thread ids (abort(), std)";
    tgkill => Rule::IfOwnPid { arg: 0 }, "only at this process: abort() raising SIGABRT, so a panic ends as an abort";
    clock_gettime => Rule::Allow, "deadlines and timestamps when the vDSO falls back to the kernel";
    gettimeofday => Rule::Allow, "as clock_gettime";
    clock_nanosleep => Rule::Allow, "the deadline watchdog sleeping";
    nanosleep => Rule::Allow, "sleeping (older libc paths)";
    sched_yield => Rule::Allow, "spin-wait back-off in locks";
    sched_getaffinity => Rule::Allow, "std::thread::available_parallelism";
    getrandom => Rule::Allow, "hash-map seeds";
    getrusage => Rule::Allow, "minor page faults for the host's statistics";
    openat => Rule::Errno(libc::EPERM),
        "fails with EPERM: std and wasmtime probe files (cgroup CPU quota, /proc) and cope with failure";
}

/// No table for this architecture: the layer reports itself unavailable.
#[cfg(not(target_arch = "x86_64"))]
pub const RULES: &[Syscall] = &[];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(not(target_arch = "x86_64"))]
const AUDIT_ARCH: u32 = 0;
/// x32 system calls have this bit set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The low 32 bits of argument `i` (little-endian `seccomp_data.args`).
fn arg_offset(arg: u8) -> u32 {
    16 + 8 * arg as u32
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn errno_or_kill(errno: i32) -> u32 {
    if errno == 0 { RET_KILL_PROCESS } else { RET_ERRNO | (errno as u32 & 0xffff) }
}

/// The instructions that decide one argument-checked call (the accumulator holds the call
/// number on entry; every path returns).
fn block(rule: Rule, pid: u32) -> Vec<libc::sock_filter> {
    match rule {
        Rule::Allow => vec![stmt(RET_K, RET_ALLOW)],
        Rule::Errno(errno) => vec![stmt(RET_K, errno_or_kill(errno))],
        Rule::IfBitSet { arg, bits } => vec![
            stmt(LD_W_ABS, arg_offset(arg)),
            jump(JSET_K, bits, 0, 1),
            stmt(RET_K, RET_ALLOW),
            stmt(RET_K, RET_KILL_PROCESS),
        ],
        Rule::UnlessAllBits { arg, bits } => vec![
            stmt(LD_W_ABS, arg_offset(arg)),
            stmt(AND_K, bits),
            jump(JEQ_K, bits, 0, 1),
            stmt(RET_K, RET_KILL_PROCESS),
            stmt(RET_K, RET_ALLOW),
        ],
        Rule::IfOneOf { arg, values, else_errno } => {
            let mut out = vec![stmt(LD_W_ABS, arg_offset(arg))];
            let count = values.len();
            for (i, &value) in values.iter().enumerate() {
                // On a match, jump over the remaining tests and the refusal to the allow.
                out.push(jump(JEQ_K, value, (count - i) as u8, 0));
            }
            out.push(stmt(RET_K, errno_or_kill(else_errno)));
            out.push(stmt(RET_K, RET_ALLOW));
            out
        }
        Rule::IfOwnPid { arg } => vec![
            stmt(LD_W_ABS, arg_offset(arg)),
            jump(JEQ_K, pid, 0, 1),
            stmt(RET_K, RET_ALLOW),
            stmt(RET_K, RET_KILL_PROCESS),
        ],
        Rule::UnlessAnyAllBits(checks) => {
            let mut out = Vec::new();
            let count = checks.len();
            for (i, &(arg, bits)) in checks.iter().enumerate() {
                out.push(stmt(LD_W_ABS, arg_offset(arg)));
                out.push(stmt(AND_K, bits));
                // All bits set: jump over the remaining checks and the allow, to the kill.
                out.push(jump(JEQ_K, bits, (3 * (count - i - 1) + 1) as u8, 0));
            }
            out.push(stmt(RET_K, RET_ALLOW));
            out.push(stmt(RET_K, RET_KILL_PROCESS));
            out
        }
        Rule::IfMaskedOneOf { arg, mask, values } => {
            let mut out = vec![stmt(LD_W_ABS, arg_offset(arg)), stmt(AND_K, mask)];
            let count = values.len();
            for (i, &value) in values.iter().enumerate() {
                out.push(jump(JEQ_K, value, (count - i) as u8, 0));
            }
            out.push(stmt(RET_K, RET_KILL_PROCESS));
            out.push(stmt(RET_K, RET_ALLOW));
            out
        }
    }
}

/// Ends thread creation for every thread of this process: a second filter, installed with
/// `SECCOMP_FILTER_FLAG_TSYNC` once the runner's own threads (the deadline watchdog) run, that
/// kills on `clone`, `clone3` and any further `seccomp`. Filters only ever add restrictions.
pub fn forbid_new_threads() -> io::Result<()> {
    let refused = [libc::SYS_clone, libc::SYS_clone3, libc::SYS_seccomp];
    let mut filter = vec![stmt(LD_W_ABS, OFFSET_NR)];
    for nr in refused {
        filter.push(jump(JEQ_K, nr as u32, 0, 1));
        filter.push(stmt(RET_K, RET_KILL_PROCESS));
    }
    filter.push(stmt(RET_K, RET_ALLOW));
    let prog = libc::sock_fprog { len: filter.len() as libc::c_ushort, filter: filter.as_mut_ptr() };
    // SAFETY: `prog` points at `filter`, a complete program that outlives the call (the kernel
    // copies it); no_new_privs is set. TSYNC applies it to every thread of the process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The whole program for `rules`, for a process whose id is `pid`.
pub fn program(rules: &[Syscall], pid: u32) -> Vec<libc::sock_filter> {
    let mut out = vec![
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFFSET_NR),
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, RET_KILL_PROCESS),
    ];
    for syscall in rules {
        let body = block(syscall.rule, pid);
        out.push(jump(JEQ_K, syscall.nr as u32, 0, body.len() as u8));
        out.extend(body);
    }
    out.push(stmt(RET_K, RET_KILL_PROCESS));
    out
}

/// Names of the calls that fail softly rather than kill, with their errno.
pub fn soft_failures() -> Vec<(&'static str, String)> {
    let name = |errno| errno_symbol(errno).map_or_else(|| format!("errno {errno}"), String::from);
    RULES
        .iter()
        .filter_map(|s| match s.rule {
            Rule::Errno(errno) => Some((s.name, name(errno))),
            Rule::IfOneOf { else_errno, .. } if else_errno != 0 => {
                Some((s.name, format!("{} for other options", name(else_errno))))
            }
            _ => None,
        })
        .collect()
}

pub fn install() -> Layer {
    if RULES.is_empty() {
        return Layer::new(SECCOMP, State::Unavailable, "no allowlist for this architecture");
    }
    let mut filter = program(RULES, std::process::id());
    let prog = libc::sock_fprog { len: filter.len() as libc::c_ushort, filter: filter.as_mut_ptr() };
    // SAFETY: `prog` points at `filter`, a complete program that outlives the call (the kernel
    // copies it); no_new_privs is set, so an unprivileged process may install it.
    let installed = unsafe {
        libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER as libc::c_ulong, &prog as *const libc::sock_fprog)
    };
    if installed != 0 {
        let err = io::Error::last_os_error();
        return Layer::new(SECCOMP, State::Unavailable, errno_name(&err));
    }
    Layer::new(
        SECCOMP,
        State::On,
        format!("allowlist, {} syscalls; anything else kills the process (SIGSYS)", RULES.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_failures_name_the_errno_each_rule_returns() {
        let soft = soft_failures();
        let how = |name: &str| soft.iter().find(|(n, _)| *n == name).map(|(_, how)| how.as_str());
        assert_eq!(how("clone3"), Some("ENOSYS"), "{soft:?}");
        assert_eq!(how("openat"), Some("EPERM"), "{soft:?}");
        assert_eq!(how("prctl"), Some("EPERM for other options"), "{soft:?}");
        assert_eq!(how("fcntl"), None, "fcntl's other commands kill: {soft:?}");
    }

    #[test]
    fn every_jump_stays_inside_the_program() {
        let program = program(RULES, 42);
        for (i, insn) in program.iter().enumerate() {
            if insn.code & 0x07 == 0x05 {
                let furthest = i + 1 + insn.jt.max(insn.jf) as usize;
                assert!(furthest < program.len(), "instruction {i} jumps past the end");
            }
        }
        assert_eq!(program.last().map(|i| (i.code, i.k)), Some((RET_K, RET_KILL_PROCESS)));
    }

    /// Runs the program on one call, like the kernel: (nr, arch, args) in, action out.
    fn run(program: &[libc::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
        let word = |offset: u32| -> u32 {
            match offset {
                OFFSET_NR => nr as u32,
                OFFSET_ARCH => arch,
                o if o >= 16 && (o - 16) % 8 == 0 => args[((o - 16) / 8) as usize] as u32,
                o => panic!("load from offset {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = program[pc];
            pc += 1;
            let jump = |taken: bool| if taken { insn.jt as usize } else { insn.jf as usize };
            match insn.code {
                LD_W_ABS => acc = word(insn.k),
                AND_K => acc &= insn.k,
                JEQ_K => pc += jump(acc == insn.k),
                JGE_K => pc += jump(acc >= insn.k),
                JSET_K => pc += jump(acc & insn.k != 0),
                RET_K => return insn.k,
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_filter_decides_as_the_table_says() {
        let program = program(RULES, 42);
        let call = |nr: i64, args: [u64; 6]| run(&program, nr, AUDIT_ARCH, args);
        let errno = |e: i32| RET_ERRNO | e as u32;
        assert_eq!(call(libc::SYS_read, [0; 6]), RET_ALLOW);
        assert_eq!(call(libc::SYS_socket, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_ptrace, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_openat, [0; 6]), errno(libc::EPERM));
        assert_eq!(call(libc::SYS_clone3, [0; 6]), errno(libc::ENOSYS));
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(call(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_tgkill, [42, 43, 6, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(libc::SYS_tgkill, [1, 1, 9, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_fcntl, [5, libc::F_GET_SEALS as u64, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(libc::SYS_fcntl, [5, libc::F_ADD_SEALS as u64, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_prctl, [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(libc::SYS_prctl, [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0]), errno(libc::EPERM));
        let prot = |p: i32| [0, 4096, p as u64, 0, 0, 0];
        assert_eq!(call(libc::SYS_mmap, prot(libc::PROT_READ | libc::PROT_WRITE)), RET_ALLOW);
        assert_eq!(call(libc::SYS_mprotect, prot(libc::PROT_READ | libc::PROT_EXEC)), RET_ALLOW);
        assert_eq!(call(libc::SYS_mprotect, prot(libc::PROT_WRITE | libc::PROT_EXEC)), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_mmap, prot(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)), RET_KILL_PROCESS);
        // Shared anonymous memory would escape RLIMIT_DATA; a shared file mapping (the region) is fine.
        let map = |flags: i32| [0, 4096, (libc::PROT_READ | libc::PROT_WRITE) as u64, flags as u64, 0, 0];
        assert_eq!(call(libc::SYS_mmap, map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS)), RET_ALLOW);
        assert_eq!(call(libc::SYS_mmap, map(libc::MAP_SHARED | libc::MAP_FIXED)), RET_ALLOW);
        assert_eq!(call(libc::SYS_mmap, map(libc::MAP_SHARED | libc::MAP_ANONYMOUS)), RET_KILL_PROCESS);
        assert_eq!(call(libc::SYS_mmap, map(libc::MAP_SHARED_VALIDATE | libc::MAP_ANONYMOUS)), RET_KILL_PROCESS);
        // Futexes: wait and wake, private or shared, with either clock; nothing else.
        let futex = |op: i32| [0, op as u64, 0, 0, 0, 0];
        for allowed in [
            libc::FUTEX_WAIT,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME,
        ] {
            assert_eq!(call(libc::SYS_futex, futex(allowed)), RET_ALLOW, "futex op {allowed}");
        }
        for refused in [libc::FUTEX_LOCK_PI, libc::FUTEX_CMP_REQUEUE, libc::FUTEX_WAKE_OP, libc::FUTEX_WAIT_REQUEUE_PI]
        {
            assert_eq!(call(libc::SYS_futex, futex(refused)), RET_KILL_PROCESS, "futex op {refused}");
        }
        assert_eq!(call(libc::SYS_seccomp, [libc::SECCOMP_SET_MODE_FILTER as u64, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(libc::SYS_seccomp, [libc::SECCOMP_GET_ACTION_AVAIL as u64, 0, 0, 0, 0, 0]), RET_KILL_PROCESS);
        // The x32 ABI and other architectures' numbers are refused outright.
        assert_eq!(call(libc::SYS_read | X32_SYSCALL_BIT as i64, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&program, libc::SYS_read, 0x4000_0003, [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn each_call_is_listed_once_with_a_reason() {
        for (i, s) in RULES.iter().enumerate() {
            assert!(!s.why.is_empty(), "{}", s.name);
            assert!(RULES[i + 1..].iter().all(|t| t.nr != s.nr), "{} twice", s.name);
        }
    }
}
