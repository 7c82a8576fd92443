fn main() -> std::process::ExitCode {
    keep_freed_memory();
    flannel_gen::cli::main()
}

/// A run builds and drops tables of every peer (5000 nodes: ~10 MB) within
/// milliseconds. By default glibc hands large blocks back to the kernel and
/// faults fresh zeroed pages in for the next; kept in the heap, converged
/// re-apply of a 5000-node topology measured 20.0 -> 18.6 ms (3247 -> 2370
/// page faults). The process is short-lived, or (watch, the udp forwarder)
/// steady at its peak, so nothing is lost by keeping it.
fn keep_freed_memory() {
    const MB: libc::c_int = 1 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * MB);
        libc::mallopt(libc::M_TOP_PAD, 16 * MB);
    }
}
