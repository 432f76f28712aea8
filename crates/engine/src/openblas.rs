//! OpenBLAS's `cblas_sgemm`, loaded at run time when the system has the library.
//!
//! Why: on CPUs with AVX2 but without AVX-512, `gemm`'s kernels lose a fifth of their speed when an operand comes
//! from L3 instead of L2, as the training step's saved activations and weights do; OpenBLAS's prefetching kernels
//! do not (docs/performance.md, "session 5": W1 +9-21 %, W3 +18-22 % steps/s on an AMD Zen 3). Loading it at run
//! time keeps the binary free of a link-time dependency: without the library, or with `APPROXLAB_GEMM=gemm`, the
//! engine uses `gemm` as before.
//!
//! OpenBLAS is told to use one thread: the engine already runs its products on Rayon's threads, one product per
//! thread, and OpenBLAS's threaded build is safe to call from several threads at once.

use libloading::Library;
use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;

type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

/// Names tried, in order, when `APPROXLAB_OPENBLAS` does not give a path.
const LIBRARY_NAMES: [&str; 4] = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll"];

/// A loaded OpenBLAS: the library stays loaded for the life of the process.
pub struct OpenBlas {
    sgemm: Sgemm,
    /// What the library says of itself (`openblas_get_config`), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen".
    pub config: String,
    /// The file it was loaded from.
    pub path: String,
    _library: Library,
}

impl OpenBlas {
    /// Loads OpenBLAS from `APPROXLAB_OPENBLAS` (a path) or from the system's library path.
    pub fn load() -> Result<OpenBlas, String> {
        load_first("APPROXLAB_OPENBLAS", &LIBRARY_NAMES, "OpenBLAS", Self::from_library)
    }

    fn from_library(library: Library, path: &str) -> Result<OpenBlas, String> {
        let missing = |symbol: &str, e: libloading::Error| format!("{path}: no {symbol} ({e})");
        // SAFETY: the symbols have these C signatures in every OpenBLAS (cblas.h, openblas_config.h).
        unsafe {
            let sgemm: Sgemm = *library.get::<Sgemm>(b"cblas_sgemm\0").map_err(|e| missing("cblas_sgemm", e))?;
            let set_threads = *library
                .get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads\0")
                .map_err(|e| missing("openblas_set_num_threads", e))?;
            set_threads(1);
            let config = match library.get::<unsafe extern "C" fn() -> *const c_char>(b"openblas_get_config\0") {
                Ok(get) => {
                    let text = get();
                    if text.is_null() {
                        String::from("OpenBLAS")
                    } else {
                        CStr::from_ptr(text).to_string_lossy().trim().to_string()
                    }
                }
                Err(_) => String::from("OpenBLAS"),
            };
            Ok(OpenBlas { sgemm, config, path: path.to_string(), _library: library })
        }
    }

    /// `c[m, n] (row stride ldc) = (accumulate ? c : 0) + op(a) op(b)` on the calling thread, where element `(i, p)`
    /// of `a` is at `a + i * a_rs + p * a_cs` and element `(p, j)` of `b` at `b + p * b_rs + j * b_cs`. Returns
    /// false, computing nothing, when a layout has no BLAS equivalent (neither stride is 1) or a size does not fit
    /// a C int; the caller then uses another kernel.
    ///
    /// # Safety
    /// The pointers must cover the operands as described, `c` must not alias them, and `m`, `n`, `k` must be > 0.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn sgemm(
        &self,
        (m, n, k): (usize, usize, usize),
        (a, a_cs, a_rs): (*const f32, isize, isize),
        (b, b_cs, b_rs): (*const f32, isize, isize),
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) -> bool {
        // A row-major [rows, cols] operand, as stored or transposed, and its leading dimension. A single row or
        // column has no meaningful stride along the other axis, so any leading dimension that BLAS accepts will do.
        let layout = |rows: usize, cols: usize, cs: isize, rs: isize| -> Option<(c_int, usize)> {
            if cs == 1 && (rows == 1 || rs >= cols as isize) {
                Some((NO_TRANS, if rows == 1 { cols } else { rs as usize }))
            } else if rs == 1 && (cols == 1 || cs >= rows as isize) {
                Some((TRANS, if cols == 1 { rows } else { cs as usize }))
            } else {
                None
            }
        };
        let (Some((op_a, lda)), Some((op_b, ldb))) = (layout(m, k, a_cs, a_rs), layout(k, n, b_cs, b_rs)) else {
            return false;
        };
        let ldc = if m == 1 { ldc.max(n) } else { ldc };
        let int = |v: usize| c_int::try_from(v.max(1));
        let (Ok(m), Ok(n), Ok(k), Ok(lda), Ok(ldb), Ok(ldc)) = (int(m), int(n), int(k), int(lda), int(ldb), int(ldc))
        else {
            return false;
        };
        let beta = if accumulate { 1.0 } else { 0.0 };
        (self.sgemm)(ROW_MAJOR, op_a, op_b, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
        true
    }
}

/// Loads the first library that opens, from the path in `env_var` when set, else from `names` on the system's
/// library path, and hands it to `from_library`; `what` names it in the error.
pub(crate) fn load_first<T>(
    env_var: &str,
    names: &[&str],
    what: &str,
    from_library: impl Fn(Library, &str) -> Result<T, String>,
) -> Result<T, String> {
    let names: Vec<String> = match std::env::var(env_var) {
        Ok(path) if !path.is_empty() => vec![path],
        _ => names.iter().map(|s| s.to_string()).collect(),
    };
    let mut failures = Vec::new();
    for name in &names {
        // SAFETY: loading these libraries runs their initialisers, which only set up their own state.
        match unsafe { Library::new(name) } {
            Ok(library) => return from_library(library, name),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(format!("{what} not found ({})", failures.join("; ")))
}

/// Which kernels the engine's products run on.
pub enum Provider {
    /// The `gemm` crate.
    Gemm,
    OpenBlas(OpenBlas),
}

impl Provider {
    /// One line for logs and benchmarks, e.g. "gemm crate (AVX2 + FMA)" or "OpenBLAS 0.3.21 ... (libopenblas.so.0)".
    pub fn describe(&self) -> String {
        match self {
            Provider::Gemm => format!("gemm crate ({})", simd_level()),
            Provider::OpenBlas(blas) => format!("{} ({})", blas.config, blas.path),
        }
    }
}

fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "AVX2 + FMA";
        }
    }
    "portable"
}

/// Whether OpenBLAS is the better default here: x86-64 with AVX2 but without AVX-512. With AVX-512, `gemm`'s own
/// AVX-512 kernels run (1.9-2.8x PyTorch in earlier measurements), so gemm stays.
fn openblas_preferred() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && !std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Chooses the provider from `APPROXLAB_GEMM`: `auto` (the default: OpenBLAS where it is preferred and loads,
/// else gemm), `gemm`, or `openblas` (an error when it does not load).
pub fn choose(setting: Option<&str>) -> Result<Provider, String> {
    match setting.map(str::trim).unwrap_or("auto") {
        "" | "auto" => Ok(if openblas_preferred() {
            OpenBlas::load().map(Provider::OpenBlas).unwrap_or(Provider::Gemm)
        } else {
            Provider::Gemm
        }),
        "gemm" => Ok(Provider::Gemm),
        "openblas" => OpenBlas::load()
            .map(Provider::OpenBlas)
            .map_err(|e| format!("APPROXLAB_GEMM=openblas: {e}; install it (Debian: apt-get install libopenblas0-pthread) or use APPROXLAB_GEMM=gemm")),
        other => Err(format!("APPROXLAB_GEMM: unknown value '{other}', expected auto, gemm or openblas")),
    }
}

static PROVIDER: OnceLock<Result<Provider, String>> = OnceLock::new();

/// The process's choice, made once from the environment.
fn chosen() -> &'static Result<Provider, String> {
    PROVIDER.get_or_init(|| choose(std::env::var("APPROXLAB_GEMM").ok().as_deref()))
}

/// The process's provider. On a bad `APPROXLAB_GEMM` the products use gemm and [`check`] reports the error.
pub fn provider() -> &'static Provider {
    chosen().as_ref().unwrap_or(&Provider::Gemm)
}

/// The provider's description, or why `APPROXLAB_GEMM` could not be honoured (for the CLI to report at start-up).
pub fn check() -> Result<String, String> {
    chosen().as_ref().map(Provider::describe).map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_parsed_and_bad_ones_rejected_with_the_choices() {
        assert!(matches!(choose(Some("gemm")), Ok(Provider::Gemm)));
        assert!(choose(Some("auto")).is_ok() && choose(None).is_ok());
        let e = choose(Some("mkl")).err().expect("unknown value rejected");
        assert!(e.contains("APPROXLAB_GEMM") && e.contains("'mkl'") && e.contains("auto, gemm or openblas"), "{e}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_library_without_blas_symbols_is_refused_with_its_name() {
        // libc is on every Linux machine and has no cblas_sgemm.
        let library = unsafe { Library::new("libc.so.6") }.expect("libc loads");
        let e = OpenBlas::from_library(library, "libc.so.6").err().expect("refused");
        assert!(e.contains("libc.so.6") && e.contains("cblas_sgemm"), "{e}");
    }
}
