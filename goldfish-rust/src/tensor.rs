//! A minimal n-dimensional array (`ArrayD<T>`): a shape and a C-order data vector.

use std::fmt::Debug;
use std::ops::{Index, IndexMut};

use crate::error::{GoldfishError, Result};
use crate::output::OutputData;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
    impl Sealed for i32 {}
    impl Sealed for u8 {}
}

/// The element types a tensor can hold; each maps to one little-endian NPY dtype.
pub trait Element: Copy + Default + PartialEq + PartialOrd + Debug + Send + Sync + 'static + sealed::Sealed {
    /// NPY `descr` written for this type (`<f4`, `<f8`, `<i8`, `<i4`, `|u1`).
    const DESCR: &'static str;
    /// numpy dtype name (`float32`, ...), as used in schemas and `svs_stats.json`.
    const DTYPE: &'static str;
    /// Bytes per element.
    const SIZE: usize;
    /// Floating point (NaN possible, entropy over a histogram) or integer (entropy over exact values).
    const IS_FLOAT: bool;
    #[doc(hidden)]
    fn from_le_slice(b: &[u8]) -> Self;
    #[doc(hidden)]
    fn from_be_slice(b: &[u8]) -> Self;
    #[doc(hidden)]
    fn extend_le(self, out: &mut Vec<u8>);
    /// Value as f64 (used for statistics).
    fn to_f64(self) -> f64;
    #[doc(hidden)]
    fn wrap(array: ArrayD<Self>) -> OutputData;
    #[doc(hidden)]
    fn peek(data: &OutputData) -> Option<&ArrayD<Self>>;
    #[doc(hidden)]
    fn unwrap_owned(data: OutputData) -> std::result::Result<ArrayD<Self>, OutputData>;
}

macro_rules! element {
    ($t:ty, $descr:expr, $dtype:expr, $float:expr, $variant:ident) => {
        impl Element for $t {
            const DESCR: &'static str = $descr;
            const DTYPE: &'static str = $dtype;
            const SIZE: usize = std::mem::size_of::<$t>();
            const IS_FLOAT: bool = $float;
            fn from_le_slice(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
            fn from_be_slice(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_be_bytes(a)
            }
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn wrap(array: ArrayD<Self>) -> OutputData {
                OutputData::$variant(array)
            }
            fn peek(data: &OutputData) -> Option<&ArrayD<Self>> {
                match data {
                    OutputData::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn unwrap_owned(data: OutputData) -> std::result::Result<ArrayD<Self>, OutputData> {
                match data {
                    OutputData::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
        }
    };
}

element!(f32, "<f4", "float32", true, TensorF32);
element!(f64, "<f8", "float64", true, TensorF64);
element!(i64, "<i8", "int64", false, TensorI64);
element!(i32, "<i4", "int32", false, TensorI32);
element!(u8, "|u1", "uint8", false, TensorU8);

/// An n-dimensional array stored in C (row-major) order. A 0-d array (`shape == []`) holds one value.
#[derive(Clone, PartialEq, Debug)]
pub struct ArrayD<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

/// Alias for readers who think of it as a tensor.
pub type Tensor<T> = ArrayD<T>;

pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl<T: Copy> ArrayD<T> {
    /// Build from a shape and C-order data; the data length must equal the product of the shape.
    pub fn from_shape_vec(shape: Vec<usize>, data: Vec<T>) -> Result<Self> {
        match element_count(&shape) {
            Some(n) if n == data.len() => Ok(ArrayD { shape, data }),
            Some(n) => Err(GoldfishError::Schema(format!(
                "shape {:?} needs {} elements but {} were given. Fix: pass data whose length is the product of the shape.",
                shape,
                n,
                data.len()
            ))),
            None => Err(GoldfishError::Schema(format!("shape {:?} overflows the element count.", shape))),
        }
    }

    /// A 1-d array holding `data`.
    pub fn from_vec(data: Vec<T>) -> Self {
        ArrayD { shape: vec![data.len()], data }
    }

    /// An array of `shape` filled with `value`.
    pub fn from_elem(shape: Vec<usize>, value: T) -> Self {
        let n = element_count(&shape).expect("shape overflows usize");
        ArrayD { shape, data: vec![value; n] }
    }

    /// A 0-d array (numpy scalar array).
    pub fn scalar(value: T) -> Self {
        ArrayD { shape: Vec::new(), data: vec![value] }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in C order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    pub fn as_slice_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.data.iter()
    }

    /// Take the C-order data, dropping the shape.
    pub fn into_raw_vec(self) -> Vec<T> {
        self.data
    }

    /// Take shape and data.
    pub fn into_parts(self) -> (Vec<usize>, Vec<T>) {
        (self.shape, self.data)
    }

    fn offset(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut off = 0usize;
        for (&i, &d) in index.iter().zip(&self.shape) {
            if i >= d {
                return None;
            }
            off = off * d + i;
        }
        Some(off)
    }

    /// Element at a multi-index, or None when out of bounds or of the wrong rank.
    pub fn get(&self, index: &[usize]) -> Option<&T> {
        self.offset(index).map(|o| &self.data[o])
    }

    pub fn get_mut(&mut self, index: &[usize]) -> Option<&mut T> {
        self.offset(index).map(move |o| &mut self.data[o])
    }

    /// Same data, new shape (the element count must not change).
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self> {
        ArrayD::from_shape_vec(shape, self.data)
    }

    /// Apply `f` to every element.
    pub fn map<U: Copy, F: FnMut(T) -> U>(&self, f: F) -> ArrayD<U> {
        ArrayD { shape: self.shape.clone(), data: self.data.iter().copied().map(f).collect() }
    }
}

impl<T: Copy + Default> ArrayD<T> {
    /// An array of `shape` filled with zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        ArrayD::from_elem(shape, T::default())
    }
}

impl<T: Copy> Index<&[usize]> for ArrayD<T> {
    type Output = T;
    fn index(&self, index: &[usize]) -> &T {
        match self.offset(index) {
            Some(o) => &self.data[o],
            None => panic!("index {:?} out of bounds for shape {:?}", index, self.shape),
        }
    }
}

impl<T: Copy> IndexMut<&[usize]> for ArrayD<T> {
    fn index_mut(&mut self, index: &[usize]) -> &mut T {
        match self.offset(index) {
            Some(o) => &mut self.data[o],
            None => panic!("index {:?} out of bounds for shape {:?}", index, self.shape),
        }
    }
}

impl<T: Copy, const N: usize> Index<[usize; N]> for ArrayD<T> {
    type Output = T;
    fn index(&self, index: [usize; N]) -> &T {
        &self[&index[..]]
    }
}

impl<T: Copy, const N: usize> IndexMut<[usize; N]> for ArrayD<T> {
    fn index_mut(&mut self, index: [usize; N]) -> &mut T {
        &mut self[&index[..]]
    }
}

impl<T: Element> From<ArrayD<T>> for OutputData {
    fn from(a: ArrayD<T>) -> OutputData {
        T::wrap(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexing_is_c_order() {
        let a = ArrayD::from_shape_vec(vec![2, 3], vec![0, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(a[[1, 0]], 3);
        assert_eq!(a[[0, 2]], 2);
        assert_eq!(a.get(&[2, 0]), None);
        assert_eq!(a.get(&[1]), None);
        let b = a.reshape(vec![3, 2]).unwrap();
        assert_eq!(b[[2, 1]], 5);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let e = ArrayD::from_shape_vec(vec![2, 2], vec![1.0f32; 3]).unwrap_err();
        assert!(e.to_string().contains("needs 4 elements"));
        assert!(ArrayD::from_shape_vec(vec![usize::MAX, 3], Vec::<u8>::new()).is_err());
    }

    #[test]
    fn scalar_and_empty() {
        let s = ArrayD::scalar(7i64);
        assert_eq!(s.ndim(), 0);
        assert_eq!(s[[]], 7);
        let e: ArrayD<f64> = ArrayD::zeros(vec![0, 5]);
        assert!(e.is_empty());
    }
}
