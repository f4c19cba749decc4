//! `OutputData`: everything `load_input` returns and `save_output` accepts.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::table::Table;
use crate::tensor::ArrayD;

/// Data passed between stages.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputData {
    TensorF32(ArrayD<f32>),
    TensorF64(ArrayD<f64>),
    TensorI64(ArrayD<i64>),
    TensorI32(ArrayD<i32>),
    TensorU8(ArrayD<u8>),
    /// A JSON document (`json` format); contracts of kind `json` need an object or array.
    Json(serde_json::Value),
    /// A table (`csv` format).
    Tabular(Table),
    /// A file or directory (`file`/`directory`/`dataset` formats, or an `.npz` input).
    Path(PathBuf),
    /// Named tensors; saved as `<signal>/<array>.npy` for `directory`/`file` outputs.
    MultiTensor(HashMap<String, OutputData>),
}

macro_rules! accessors {
    ($as:ident, $as_mut:ident, $into:ident, $variant:ident, $t:ty) => {
        /// Borrow the value if it is this variant.
        pub fn $as(&self) -> Option<&$t> {
            match self {
                OutputData::$variant(v) => Some(v),
                _ => None,
            }
        }
        /// Borrow mutably if it is this variant.
        pub fn $as_mut(&mut self) -> Option<&mut $t> {
            match self {
                OutputData::$variant(v) => Some(v),
                _ => None,
            }
        }
        /// Take the value, or get `self` back unchanged as the error.
        pub fn $into(self) -> std::result::Result<$t, OutputData> {
            match self {
                OutputData::$variant(v) => Ok(v),
                other => Err(other),
            }
        }
    };
}

impl OutputData {
    accessors!(as_tensor_f32, as_tensor_f32_mut, into_tensor_f32, TensorF32, ArrayD<f32>);
    accessors!(as_tensor_f64, as_tensor_f64_mut, into_tensor_f64, TensorF64, ArrayD<f64>);
    accessors!(as_tensor_i64, as_tensor_i64_mut, into_tensor_i64, TensorI64, ArrayD<i64>);
    accessors!(as_tensor_i32, as_tensor_i32_mut, into_tensor_i32, TensorI32, ArrayD<i32>);
    accessors!(as_tensor_u8, as_tensor_u8_mut, into_tensor_u8, TensorU8, ArrayD<u8>);
    accessors!(as_json, as_json_mut, into_json, Json, serde_json::Value);
    accessors!(as_tabular, as_tabular_mut, into_tabular, Tabular, Table);
    accessors!(as_path, as_path_mut, into_path, Path, PathBuf);
    accessors!(as_multi_tensor, as_multi_tensor_mut, into_multi_tensor, MultiTensor, HashMap<String, OutputData>);

    /// numpy dtype name of a tensor variant (`float32`, ...); None for other variants.
    pub fn dtype_str(&self) -> Option<&'static str> {
        match self {
            OutputData::TensorF32(_) => Some("float32"),
            OutputData::TensorF64(_) => Some("float64"),
            OutputData::TensorI64(_) => Some("int64"),
            OutputData::TensorI32(_) => Some("int32"),
            OutputData::TensorU8(_) => Some("uint8"),
            _ => None,
        }
    }

    /// Shape of a tensor variant.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            OutputData::TensorF32(a) => Some(a.shape()),
            OutputData::TensorF64(a) => Some(a.shape()),
            OutputData::TensorI64(a) => Some(a.shape()),
            OutputData::TensorI32(a) => Some(a.shape()),
            OutputData::TensorU8(a) => Some(a.shape()),
            _ => None,
        }
    }

    /// True for the five single-tensor variants.
    pub fn is_tensor(&self) -> bool {
        self.dtype_str().is_some()
    }

    /// Short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            OutputData::TensorF32(_)
            | OutputData::TensorF64(_)
            | OutputData::TensorI64(_)
            | OutputData::TensorI32(_)
            | OutputData::TensorU8(_) => "tensor",
            OutputData::Json(_) => "json",
            OutputData::Tabular(_) => "tabular",
            OutputData::Path(_) => "path",
            OutputData::MultiTensor(_) => "multi-tensor",
        }
    }
}

impl From<serde_json::Value> for OutputData {
    fn from(v: serde_json::Value) -> Self {
        OutputData::Json(v)
    }
}

impl From<Table> for OutputData {
    fn from(t: Table) -> Self {
        OutputData::Tabular(t)
    }
}

impl From<PathBuf> for OutputData {
    fn from(p: PathBuf) -> Self {
        OutputData::Path(p)
    }
}

impl From<HashMap<String, OutputData>> for OutputData {
    fn from(m: HashMap<String, OutputData>) -> Self {
        OutputData::MultiTensor(m)
    }
}
