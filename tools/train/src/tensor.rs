//! A float tensor as checkpoints hold it: dims and row-major f32 values. Shared by the
//! checkpoint readers (`weights`, `clip_names`) and the graph writers (`onnx`).

use anyhow::{bail, Result};

#[derive(Debug, Clone)]
pub struct Tensor {
    pub dims: Vec<i64>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// The transpose of a 2-D tensor.
    pub fn transposed(&self) -> Result<Tensor> {
        let [rows, cols] = self.dims[..] else { bail!("shape {:?} is not 2-D", self.dims) };
        let (rows, cols) = (rows as usize, cols as usize);
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Ok(Tensor { dims: vec![cols as i64, rows as i64], data })
    }
}
