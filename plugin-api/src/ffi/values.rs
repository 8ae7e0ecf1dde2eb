//! A scalar function written over values (plugin ABI 1.14): the bundle runs its loop over the
//! host's buffers and builds no arrays.
//!
//! For a function that does a few instructions a row (`time_bucket`: 27), what a batch costs
//! across the boundary is mostly code run cold once a batch: the crossing's own, and the
//! bundle's second copy of the Arrow code that builds and drops arrays around the arguments and
//! the result (callgrind: about half of `time_bucket`'s +533 first-level instruction cache
//! misses a batch over native code, see `bench/JOURNAL.md`). No refinement of the array path
//! removes that second half. On this path the host lends a call
//!
//! - each argument's values ([`FFI_Values`]: the first of `num_rows`, or a scalar's one),
//! - one validity bitmap, the union of the arguments' ([`FFI_Validity`]),
//! - an output buffer it allocated for `num_rows` values of the return type,
//!
//! and the bundle writes every row of the output. The host builds the result around its own
//! buffer and the union bitmap ([`invoke`]), with the code a native call of the same function
//! runs; the bundle's side is the function's loop.
//!
//! So a function over values is null-propagating (a row with a null argument is null, and the
//! function is not called for it), and takes and returns fixed-width types. An author writes one
//! with [`crate::toolkit::values::ValuesUDF`], which is also an ordinary `ScalarUDFImpl`: a
//! native call runs [`invoke`] around the same loop, and an older host calls it through the
//! array path. The bundle offers the entry
//! ([`super::scalar_kernel::FFI_ScalarCall::invoke_values`]) when it binds a call whose fields
//! are the types the function was written for.

use std::borrow::Cow;
use std::ffi::c_void;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, downcast_primitive,
    downcast_primitive_array, new_empty_array, new_null_array,
};
use datafusion::arrow::buffer::{Buffer, MutableBuffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use smallvec::SmallVec;

use super::buffers::scalar_native_bytes;

/// The plugin ABI minor whose calls may have
/// [`super::scalar_kernel::FFI_ScalarCall::invoke_values`].
pub const INVOKE_VALUES_MINOR: u16 = 14;

/// One argument's values, lent for a call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FFI_Values {
    /// The first value, of the type bound for the argument, aligned for it: `num_rows` values,
    /// or one for a scalar.
    pub values: *const c_void,
    /// One value stands for every row.
    pub scalar: bool,
}

/// Which rows of a call are valid: the union of its arguments' null bitmaps.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FFI_Validity {
    /// Arrow's validity bitmap (a set bit is a valid row, least significant bit first), or null
    /// when every row is valid.
    pub bits: *const u8,
    /// The bit that holds the first row.
    pub offset: usize,
}

impl FFI_Validity {
    /// Every row valid.
    pub const ALL_VALID: Self = Self {
        bits: std::ptr::null(),
        offset: 0,
    };

    fn of(nulls: Option<&NullBuffer>) -> Self {
        match nulls {
            Some(nulls) => Self {
                bits: nulls.buffer().as_ptr(),
                offset: nulls.offset(),
            },
            None => Self::ALL_VALID,
        }
    }

    /// Whether every row is valid.
    pub fn all_valid(&self) -> bool {
        self.bits.is_null()
    }

    /// Whether `row` is valid.
    ///
    /// # Safety
    /// Unless every row is valid, the bitmap holds `offset + row + 1` bits.
    #[inline]
    pub unsafe fn is_valid(&self, row: usize) -> bool {
        if self.bits.is_null() {
            return true;
        }
        let bit = self.offset + row;
        // SAFETY: the caller's contract.
        unsafe { *self.bits.add(bit / 8) & (1 << (bit % 8)) != 0 }
    }
}

/// A function's loop over values: the bundle's side of a call, and the core of a native one.
pub trait ValuesKernel: Debug + Send + Sync {
    /// The types of the arguments it reads, in order.
    fn arg_types(&self) -> &[DataType];

    /// The type of the values it writes.
    fn return_type(&self) -> &DataType;

    /// Writes one value of [`Self::return_type`] per row at `out`; a row `validity` says is
    /// null gets any value, and the function is not called for it.
    ///
    /// # Safety
    /// `args` are values of [`Self::arg_types`], `num_rows` of each (one for a scalar);
    /// `validity` covers `num_rows` rows; `out` has room for `num_rows` values of the return
    /// type and is aligned for them.
    unsafe fn eval(
        &self,
        args: &[FFI_Values],
        validity: FFI_Validity,
        num_rows: usize,
        out: *mut c_void,
    ) -> Result<()>;
}

/// Whether a call bound to these argument fields and return type can run `kernel`'s loop: the
/// types are the ones it was written for.
pub fn fits(kernel: &dyn ValuesKernel, arg_fields: &[FieldRef], return_type: &DataType) -> bool {
    kernel.return_type() == return_type
        && kernel.arg_types().len() == arg_fields.len()
        && (kernel.arg_types().iter())
            .zip(arg_fields)
            .all(|(t, f)| t == f.data_type())
}

/// Calls `eval` on a batch's arguments as values and builds its result: what the host does
/// around a bundle's entry, and what a native call does around its own loop, so both run the
/// same code but the loop.
///
/// Lends each argument's values (a scalar's copied to a slot here), the union of their null
/// bitmaps and an output buffer for `num_rows` values of `return_type`. A null scalar argument
/// makes every row null without a call, and no rows make no call. When every argument is a
/// scalar, one row is computed and the result is a scalar. Each argument must be of its
/// field's type and an array of `num_rows` rows, as DataFusion promises: what `eval` reads is
/// checked here, not trusted.
///
/// # Safety
/// When `eval` returns `Ok`, it wrote one value of `return_type` per row it was given at the
/// output it was given.
pub unsafe fn invoke(
    args: &[ColumnarValue],
    arg_fields: &[FieldRef],
    num_rows: usize,
    return_type: &DataType,
    eval: impl FnOnce(&[FFI_Values], FFI_Validity, usize, *mut c_void) -> Result<()>,
) -> Result<ColumnarValue> {
    if args.len() != arg_fields.len() {
        return Err(DataFusionError::Internal(format!(
            "a function over values was called with {} argument(s) and {} field(s)",
            args.len(),
            arg_fields.len()
        )));
    }
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if all_scalar { 1 } else { num_rows };
    let mut lent = Lent::default();
    for (arg, field) in args.iter().zip(arg_fields) {
        if !lent.push(arg, field.data_type(), num_rows)? {
            return Ok(match all_scalar {
                true => ColumnarValue::Scalar(ScalarValue::try_from(return_type)?),
                false => ColumnarValue::Array(new_null_array(return_type, num_rows)),
            });
        }
    }
    if rows == 0 {
        return Ok(ColumnarValue::Array(new_empty_array(return_type)));
    }
    let width = return_type
        .primitive_width()
        .ok_or_else(|| not_fixed_width(return_type))?;
    let bytes = rows.checked_mul(width).ok_or_else(|| {
        DataFusionError::Execution(format!("{rows} values of {return_type} overflow memory"))
    })?;
    let mut out = MutableBuffer::with_capacity(bytes);
    eval(
        &lent.values(),
        FFI_Validity::of(lent.nulls.as_ref()),
        rows,
        out.as_mut_ptr().cast(),
    )?;
    // SAFETY: `eval` wrote `rows` values of `width` bytes (the caller's contract), within the
    // capacity reserved for them.
    unsafe { out.set_len(bytes) };
    let array = build_array(return_type, out.into(), rows, lent.nulls)?;
    Ok(match all_scalar {
        true => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
        false => ColumnarValue::Array(array),
    })
}

/// What a call lends: its arguments' values, and what keeps a scalar's alive.
#[derive(Default)]
struct Lent {
    args: SmallVec<[Arg; 4]>,
    /// A scalar of a type with a native width of at most 8 bytes, its value in the first bytes
    /// (aligned for any such type).
    slots: SmallVec<[u64; 4]>,
    /// Any other scalar, as a one-row array.
    arrays: SmallVec<[ArrayRef; 1]>,
    nulls: Option<NullBuffer>,
}

/// An argument lent: values in an array the caller or [`Lent::arrays`] keeps, or a slot of
/// [`Lent::slots`].
#[derive(Clone, Copy)]
enum Arg {
    Values(FFI_Values),
    Slot(usize),
}

impl Lent {
    /// Lends `arg`, an argument of type `expected` in a call of `rows` rows, which the caller
    /// keeps until the call returns; `false` for a null scalar (every row is null).
    fn push(&mut self, arg: &ColumnarValue, expected: &DataType, rows: usize) -> Result<bool> {
        if let ColumnarValue::Scalar(scalar) = arg
            && scalar.is_null()
        {
            return Ok(false);
        }
        let found = match arg {
            ColumnarValue::Array(array) if array.len() != rows => {
                return Err(DataFusionError::Internal(format!(
                    "a function over values was called on {} row(s) with an array of {}",
                    rows,
                    array.len()
                )));
            }
            ColumnarValue::Array(array) => Cow::Borrowed(array.data_type()),
            ColumnarValue::Scalar(scalar) => Cow::Owned(scalar.data_type()),
        };
        if found.as_ref() != expected {
            return Err(DataFusionError::Internal(format!(
                "a function over values bound to {expected} was called with a value of type \
                 {found}"
            )));
        }
        let lent = match arg {
            ColumnarValue::Array(array) => {
                self.nulls = NullBuffer::union(self.nulls.as_ref(), array.nulls());
                Arg::Values(FFI_Values {
                    values: values_of(array)?,
                    scalar: false,
                })
            }
            ColumnarValue::Scalar(scalar) => match scalar_native_bytes(scalar) {
                Some((_, Some(bytes))) => {
                    self.slots.push(u64::from_ne_bytes(bytes));
                    Arg::Slot(self.slots.len() - 1)
                }
                // Not null (answered above): a type with no slot.
                _ => {
                    let array = scalar.to_array_of_size(1)?;
                    let values = values_of(&array)?;
                    self.arrays.push(array);
                    Arg::Values(FFI_Values {
                        values,
                        scalar: true,
                    })
                }
            },
        };
        self.args.push(lent);
        Ok(true)
    }

    /// The values lent. A slot's points into `self`, which must not move or change until the
    /// call returns.
    fn values(&self) -> SmallVec<[FFI_Values; 4]> {
        self.args
            .iter()
            .map(|arg| match *arg {
                Arg::Values(values) => values,
                Arg::Slot(i) => FFI_Values {
                    values: (&raw const self.slots[i]).cast(),
                    scalar: true,
                },
            })
            .collect()
    }
}

/// The first value of a fixed-width array (its offset applied).
fn values_of(array: &ArrayRef) -> Result<*const c_void> {
    downcast_primitive_array!(
        array => Ok(array.values().as_ptr().cast()),
        _ => Err(not_fixed_width(array.data_type()))
    )
}

/// The array of `rows` values of `data_type` in `values`, null where `nulls` says.
fn build_array(
    data_type: &DataType,
    values: Buffer,
    rows: usize,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    macro_rules! build {
        ($t:ty) => {
            build_primitive::<$t>(data_type, values, rows, nulls)
        };
    }
    downcast_primitive!(data_type => (build), _ => Err(not_fixed_width(data_type)))
}

fn build_primitive<T: ArrowPrimitiveType>(
    data_type: &DataType,
    values: Buffer,
    rows: usize,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    let array = PrimitiveArray::<T>::try_new(ScalarBuffer::new(values, 0, rows), nulls)?;
    // A type with parameters the native type does not carry (a timestamp's time zone).
    if data_type != &T::DATA_TYPE {
        return Ok(Arc::new(array.with_data_type(data_type.clone())));
    }
    Ok(Arc::new(array))
}

fn not_fixed_width(data_type: &DataType) -> DataFusionError {
    DataFusionError::Internal(format!(
        "a function over values was called with values of type {data_type}, which has no fixed \
         width (a bug in plugin-api: such a call takes the array path)"
    ))
}
