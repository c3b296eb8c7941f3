//! Sealed memfd regions: created and sized by the host, sealed so that a plugin process can
//! neither shrink nor grow them (a shrink would make the host's accesses fault with SIGBUS).

use memmap2::{MmapMut, MmapOptions};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Creates a memfd of `size` bytes, sealed against shrinking, growing and further sealing.
pub fn create_sealed(name: &str, size: u64) -> io::Result<File> {
    let fd: OwnedFd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let file = File::from(fd);
    file.set_len(size)?;
    fcntl(
        file.as_fd(),
        FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL),
    )?;
    Ok(file)
}

/// Whether `file` carries the seals [`create_sealed`] sets.
pub fn is_sealed(file: &File) -> io::Result<bool> {
    let seals = SealFlag::from_bits_truncate(fcntl(file.as_fd(), FcntlArg::F_GET_SEALS)?);
    Ok(seals.contains(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL))
}

/// Maps all of `file` shared and writable, pre-faulted so that frames never pay page faults.
pub fn map_shared(file: &File) -> io::Result<MmapMut> {
    let len = file.metadata()?.len();
    let len = usize::try_from(len).map_err(|_| io::Error::other("region larger than the address space"))?;
    // SAFETY: the mapping is of a sealed memfd whose size cannot change, so no access within
    // `len` can fault; the other process may write it concurrently, which every reader of this
    // mapping allows for (atomics for control words, copy-then-validate for descriptors).
    unsafe { MmapOptions::new().len(len).populate().map_mut(file) }
}
