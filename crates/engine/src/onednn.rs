//! oneDNN's bf16 matrix product (`dnnl_gemm_bf16bf16f32`: bf16 operands, f32 accumulation and result), loaded at run
//! time when the system has the library.
//!
//! Why oneDNN: on this project's AMD Zen 4 (AVX512-BF16) its bf16 products run at 1.9x its own f32 products and
//! 2.1x OpenBLAS's f32 ones, per block shape of the training step, on one thread and on two (docs/performance.md,
//! "session 6"). Debian's OpenBLAS 0.3.21 is built without `cblas_sbgemm`, and oneDNN is what PyTorch's autocast
//! uses on CPUs. Loading it at run time keeps the binary free of a link-time dependency: without the library the
//! engine trains in f32 and says so.
//!
//! Debian's oneDNN runs on OpenMP. The engine already runs one product per Rayon thread, so each thread that calls
//! in first sets its own OpenMP thread count to 1 (`omp_set_num_threads` sets the calling thread's value).

use libloading::Library;
use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

type GemmBf16 = unsafe extern "C" fn(
    c_char,
    c_char,
    i64,
    i64,
    i64,
    f32,
    *const u16,
    i64,
    *const u16,
    i64,
    f32,
    *mut f32,
    i64,
) -> c_int;

/// `dnnl_version_t` of oneDNN 1.x-3.x.
#[repr(C)]
struct Version {
    major: c_int,
    minor: c_int,
    patch: c_int,
    hash: *const c_char,
    cpu_runtime: u32,
    gpu_runtime: u32,
}

/// Names tried, in order, when `APPROXLAB_ONEDNN` does not give a path.
const LIBRARY_NAMES: [&str; 4] = ["libdnnl.so.2", "libdnnl.so.3", "libdnnl.so", "libdnnl.dylib"];

/// A loaded oneDNN: the library stays loaded for the life of the process.
pub struct OneDnn {
    gemm_bf16: GemmBf16,
    set_omp_threads: Option<unsafe extern "C" fn(c_int)>,
    /// e.g. "oneDNN 2.6.3".
    pub version: String,
    /// The file it was loaded from.
    pub path: String,
    _library: Library,
}

thread_local! {
    /// Whether this thread has set its OpenMP thread count to 1.
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

impl OneDnn {
    /// Loads oneDNN from `APPROXLAB_ONEDNN` (a path) or from the system's library path.
    pub fn load() -> Result<OneDnn, String> {
        crate::openblas::load_first("APPROXLAB_ONEDNN", &LIBRARY_NAMES, "oneDNN", Self::from_library)
    }

    fn from_library(library: Library, path: &str) -> Result<OneDnn, String> {
        // SAFETY: the symbols have these C signatures in oneDNN 1.x-3.x (dnnl.h, dnnl_types.h) and in libgomp.
        unsafe {
            let gemm_bf16 = *library
                .get::<GemmBf16>(b"dnnl_gemm_bf16bf16f32\0")
                .map_err(|e| format!("{path}: no dnnl_gemm_bf16bf16f32 ({e})"))?;
            // Found through the library's dependencies when it was built on OpenMP; absent for other runtimes,
            // which then need nothing (sequential and threadpool builds do not start threads of their own).
            let set_omp_threads = library.get::<unsafe extern "C" fn(c_int)>(b"omp_set_num_threads\0").ok().map(|f| *f);
            let version = match library.get::<unsafe extern "C" fn() -> *const Version>(b"dnnl_version\0") {
                Ok(get) => match get().as_ref() {
                    Some(v) => format!("oneDNN {}.{}.{}", v.major, v.minor, v.patch),
                    None => "oneDNN".to_string(),
                },
                Err(_) => "oneDNN".to_string(),
            };
            Ok(OneDnn { gemm_bf16, set_omp_threads, version, path: path.to_string(), _library: library })
        }
    }

    /// `c[m, n] (row-major, row stride ldc) = (accumulate ? c : 0) + op(a) op(b)` with bf16 `a` and `b`, on the
    /// calling thread. `a` is row-major `[m, k]` (or `[k, m]` when `trans_a`) with row stride `lda`; likewise `b` is
    /// `[k, n]` (or `[n, k]`) with row stride `ldb`. Returns false when oneDNN refuses the call.
    ///
    /// # Safety
    /// The pointers must cover the operands as described, `c` must not alias them, and `m`, `n`, `k` must be > 0.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_bf16(
        &self,
        (m, n, k): (usize, usize, usize),
        (a, trans_a, lda): (*const u16, bool, usize),
        (b, trans_b, ldb): (*const u16, bool, usize),
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) -> bool {
        if let Some(set) = self.set_omp_threads {
            if !SERIAL.get() {
                set(1);
                SERIAL.set(true);
            }
        }
        let op = |t: bool| if t { b'T' as c_char } else { b'N' as c_char };
        let int = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let beta = if accumulate { 1.0 } else { 0.0 };
        let status = (self.gemm_bf16)(
            op(trans_a),
            op(trans_b),
            int(m),
            int(n),
            int(k),
            1.0,
            a,
            int(lda),
            b,
            int(ldb),
            beta,
            c,
            int(ldc),
        );
        status == 0
    }
}

static LIBRARY: OnceLock<Result<OneDnn, String>> = OnceLock::new();

/// The process's oneDNN, loaded on first use, or why it could not be.
pub fn library() -> Result<&'static OneDnn, &'static str> {
    LIBRARY.get_or_init(OneDnn::load).as_ref().map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_library_without_the_bf16_product_is_refused_with_its_name() {
        // libc is on every Linux machine and has no dnnl_gemm_bf16bf16f32.
        let library = unsafe { Library::new("libc.so.6") }.expect("libc loads");
        let e = OneDnn::from_library(library, "libc.so.6").err().expect("refused");
        assert!(e.contains("libc.so.6") && e.contains("dnnl_gemm_bf16bf16f32"), "{e}");
    }
}
