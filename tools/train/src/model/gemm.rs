//! One safe entry to the `gemm` crate (candle's own GEMM) for the fused ops: strided matrix
//! views checked against their slices before the unsafe call.

/// A row-major matrix view: element (i, j) at `at + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub(crate) at: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    pub(crate) fn rows(at: usize, rs: usize) -> Self {
        Mat { at, rs, cs: 1 }
    }

    pub(crate) fn t(self) -> Self {
        Mat { at: self.at, rs: self.cs, cs: self.rs }
    }

    /// One past the last element an r x c matrix touches.
    fn end(&self, r: usize, c: usize) -> usize {
        if r == 0 || c == 0 {
            self.at
        } else {
            self.at + (r - 1) * self.rs + (c - 1) * self.cs + 1
        }
    }
}

/// dst (m x n) = beta * lhs (m x k) @ rhs (k x n), single-threaded (the callers split the
/// work): every view is checked against its slice first, so the unsafe call stays in bounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    d: Mat,
    lhs: &[f32],
    l: Mat,
    rhs: &[f32],
    r: Mat,
    beta: f32,
) {
    assert!(
        d.end(m, n) <= dst.len() && l.end(m, k) <= lhs.len() && r.end(k, n) <= rhs.len(),
        "gemm view out of bounds"
    );
    // SAFETY: the assertion above keeps every element the views reach inside its slice, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.at),
            d.cs as isize,
            d.rs as isize,
            false,
            lhs.as_ptr().add(l.at),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr().add(r.at),
            r.cs as isize,
            r.rs as isize,
            0.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
