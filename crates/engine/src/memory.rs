//! The model's parameter-sized buffers (parameters, gradients, optimizer moments), backed by huge pages where the
//! kernel offers them.
//!
//! A hash grid reads and adds to random rows of tables of hundreds of MB. With 4 KiB pages nearly every one of those
//! accesses also misses the TLB, and under a hypervisor each page walk is itself a chain of memory reads; with
//! 2 MiB pages the TLB covers the tables. Linux gives transparent huge pages to a region only when asked
//! (`madvise`, the default setting of most distributions), and only to pages not yet touched, so the buffers ask
//! before anything writes to them. Nothing else changes: the contents and every result are the same.

/// Smaller buffers gain nothing from huge pages.
const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// `n` zeros, in memory the kernel may back with transparent huge pages, its pages already mapped: written once
/// here on every thread, so that the kernel's first-touch faults (1.5 s for the challenge champion's 1.3 GB of
/// gradients and moments) happen while the model is built, not in the first training step and its time budget.
pub fn zeroed(n: usize) -> Vec<f32> {
    zeroed_except(n, 0..0)
}

/// [`zeroed`], leaving the pages of `unused` unmapped: zeros that are never written (the gradient of tables that
/// take their step in the backward) then take no memory, only address space.
pub fn zeroed_except(n: usize, unused: std::ops::Range<usize>) -> Vec<f32> {
    use rayon::prelude::*;
    let mut v = vec![0.0f32; n];
    advise_huge_pages(&v);
    if std::mem::size_of_val(v.as_slice()) >= HUGE_PAGE_THRESHOLD {
        let (head, tail) = v.split_at_mut(unused.start.min(n));
        let skip = unused.len().min(tail.len());
        let tail = &mut tail[skip..];
        for part in [head, tail] {
            part.par_chunks_mut(HUGE_PAGE_THRESHOLD / 4).for_each(|c| c.fill(0.0));
        }
    }
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(v: &[f32]) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(v);
    if bytes < HUGE_PAGE_THRESHOLD {
        return;
    }
    let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (v.as_ptr() as usize + bytes) / PAGE * PAGE;
    // SAFETY: `start..end` lies inside `v`'s allocation and is page-aligned; MADV_HUGEPAGE changes how the kernel
    // backs those pages, never their contents. A refusal (a kernel without THP) leaves ordinary pages.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &[f32]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_buffers_are_zeroed_and_sized() {
        for n in [0, 1, 1000, (HUGE_PAGE_THRESHOLD / 4) + 3] {
            let v = zeroed(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
            // Unmapped parts read as zeros too, wherever they lie (past the end included).
            for unused in [0..0, 0..n, n / 3..n / 2, n / 2..n + 10] {
                let v = zeroed_except(n, unused.clone());
                assert_eq!(v.len(), n);
                assert!(v.iter().all(|&x| x == 0.0), "{n}, {unused:?}");
            }
        }
    }

    /// Where the kernel offers transparent huge pages (the `madvise` or `always` setting), a large buffer gets them.
    #[cfg(target_os = "linux")]
    #[test]
    fn large_buffers_are_backed_by_huge_pages_where_the_kernel_offers_them() {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if !setting.contains("[madvise]") && !setting.contains("[always]") {
            eprintln!("skipped: transparent huge pages are off here ({})", setting.trim());
            return;
        }
        let mut v = zeroed(16 << 20);
        v.iter_mut().step_by(1024).for_each(|x| *x = 1.0);
        // The advice splits the mapping at page boundaries: look at the one holding the buffer's middle.
        let at = v.as_ptr() as usize + std::mem::size_of_val(&v[..]) / 2;
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut inside = false;
        let mut huge_kb = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) {
                        inside = (lo..hi).contains(&at);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    huge_kb = kb.trim().trim_end_matches("kB").trim().parse::<usize>().ok();
                }
            }
        }
        let huge_kb = huge_kb.expect("the buffer's mapping in /proc/self/smaps");
        assert!(huge_kb >= 2048, "a 64 MB buffer got {huge_kb} kB of huge pages");
        assert_eq!(v.iter().filter(|&&x| x == 1.0).count(), (16 << 20) / 1024);
    }
}
