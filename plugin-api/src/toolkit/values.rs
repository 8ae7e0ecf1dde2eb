//! Scalar functions written over values: a function of one or two fixed-width arguments,
//! row by row, that a host of plugin ABI 1.14 or later calls without building any array in
//! the bundle (see [`crate::ffi::values`] for why).
//!
//! ```
//! use datafusion::arrow::datatypes::Int64Type;
//! use datafusion::common::DataFusionError;
//! use datafusion::logical_expr::{ScalarUDF, Volatility};
//! use df_plugin_api::toolkit::values::ValuesUDF;
//!
//! fn halve(v: i64) -> Result<i64, DataFusionError> {
//!     Ok(v / 2)
//! }
//! let udf: ScalarUDF = ValuesUDF::unary::<Int64Type, Int64Type, _, _>("halve", Volatility::Immutable, halve).into();
//! ```
//!
//! The function is null-propagating: a row where an argument is null is null, and the function
//! is not called for it. It is an ordinary `ScalarUDFImpl` as well, so a session that links it
//! (a test, a benchmark's native side) runs the very same loop, and an older host calls it
//! through the array path.

use std::ffi::c_void;
use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use datafusion::arrow::array::ArrowPrimitiveType;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::ffi::values::{self, FFI_Validity, FFI_Values, ValuesKernel};
use crate::toolkit::guard::scalar::GuardedScalarUDF;
use crate::toolkit::panic::{ObjectLabel, guard};

/// A scalar function over values: its name, its signature (exactly the types it was written
/// for, unless replaced by [`Self::with_signature`]) and its loop.
pub struct ValuesUDF {
    name: String,
    signature: Signature,
    kernel: Arc<dyn ValuesKernel>,
}

impl ValuesUDF {
    /// `f` on each row of one argument of type `A`, giving a value of type `O`.
    pub fn unary<A, O, F, E>(name: &str, volatility: Volatility, f: F) -> Self
    where
        A: ArrowPrimitiveType,
        O: ArrowPrimitiveType,
        F: Fn(A::Native) -> Result<O::Native, E> + Send + Sync + 'static,
        E: Into<DataFusionError>,
    {
        let rows = Unary::<A, O, F> {
            f,
            _types: PhantomData,
        };
        Self::new(
            name,
            volatility,
            Kernel::new([A::DATA_TYPE], O::DATA_TYPE, rows),
        )
    }

    /// `f` on each row of two arguments of types `A` and `B`, giving a value of type `O`.
    pub fn binary<A, B, O, F, E>(name: &str, volatility: Volatility, f: F) -> Self
    where
        A: ArrowPrimitiveType,
        B: ArrowPrimitiveType,
        O: ArrowPrimitiveType,
        F: Fn(A::Native, B::Native) -> Result<O::Native, E> + Send + Sync + 'static,
        E: Into<DataFusionError>,
    {
        let rows = Binary::<A, B, O, F> {
            f,
            _types: PhantomData,
        };
        let arg_types = [A::DATA_TYPE, B::DATA_TYPE];
        Self::new(name, volatility, Kernel::new(arg_types, O::DATA_TYPE, rows))
    }

    fn new(name: &str, volatility: Volatility, kernel: impl ValuesKernel + 'static) -> Self {
        Self {
            name: name.to_string(),
            signature: Signature::exact(kernel.arg_types().to_vec(), volatility),
            kernel: Arc::new(kernel),
        }
    }

    /// Replaces the signature, e.g. with one that names the parameters. DataFusion coerces the
    /// arguments to what the signature accepts; a call with other types than the function was
    /// written for fails with an error naming them.
    pub fn with_signature(mut self, signature: Signature) -> Self {
        self.signature = signature;
        self
    }

    /// The loop, for a call bound to these types (`None` when they are not the function's).
    fn kernel_for(
        &self,
        arg_fields: &[FieldRef],
        return_type: &DataType,
    ) -> Option<Arc<dyn ValuesKernel>> {
        values::fits(self.kernel.as_ref(), arg_fields, return_type)
            .then(|| Arc::clone(&self.kernel))
    }

    /// Runs every batch natively: no allocation unless the types are wrong.
    fn check_types(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let return_type = args.return_field.data_type();
        if values::fits(self.kernel.as_ref(), &args.arg_fields, return_type) {
            return Ok(());
        }
        Err(DataFusionError::Execution(format!(
            "{} is written over values of types ({}) returning {}, and was called with ({}) \
             returning {}: its signature must coerce its arguments to the types it was written \
             for",
            self.name,
            list(self.kernel.arg_types().iter()),
            self.kernel.return_type(),
            list(args.arg_fields.iter().map(|f| f.data_type())),
            return_type,
        )))
    }
}

fn list<'a>(types: impl Iterator<Item = &'a DataType>) -> String {
    types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
}

/// The loop of a function this bundle exported, if it is a function over values fit for a call
/// bound to these types: what [`crate::ffi::scalar_kernel`] offers the host as the call's
/// `invoke_values`. It runs under the function's guard, as the function's other calls do. A
/// `ValuesUDF` wrapped in another `ScalarUDFImpl` (`ScalarUDF::with_aliases`) is not seen
/// here, and its calls take the array path.
pub(crate) fn kernel_of(
    udf: &dyn ScalarUDFImpl,
    arg_fields: &[FieldRef],
    return_type: &DataType,
) -> Option<Arc<dyn ValuesKernel>> {
    let Some(guarded) = udf.downcast_ref::<GuardedScalarUDF>() else {
        return udf
            .downcast_ref::<ValuesUDF>()?
            .kernel_for(arg_fields, return_type);
    };
    let kernel =
        (guarded.imp().downcast_ref::<ValuesUDF>()?).kernel_for(arg_fields, return_type)?;
    Some(Arc::new(GuardedKernel {
        label: Arc::clone(guarded.label()),
        kernel,
    }))
}

/// A function's loop under its guard: a panic becomes an error that names the bundle and the
/// function, and the conformance kit's injected panic fires in it, as in the array path's
/// `invoke`.
#[derive(Debug)]
struct GuardedKernel {
    label: Arc<ObjectLabel>,
    kernel: Arc<dyn ValuesKernel>,
}

impl ValuesKernel for GuardedKernel {
    fn arg_types(&self) -> &[DataType] {
        self.kernel.arg_types()
    }

    fn return_type(&self) -> &DataType {
        self.kernel.return_type()
    }

    unsafe fn eval(
        &self,
        args: &[FFI_Values],
        validity: FFI_Validity,
        num_rows: usize,
        out: *mut c_void,
    ) -> Result<()> {
        guard(&self.label, "invoke", || {
            // SAFETY: the caller's contract, passed on.
            unsafe { self.kernel.eval(args, validity, num_rows, out) }
        })
    }
}

impl Debug for ValuesUDF {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValuesUDF")
            .field("name", &self.name)
            .field("kernel", &self.kernel)
            .finish()
    }
}

/// Equal when they are the same function: the same name, signature and loop (the same `Arc`, so
/// two functions built by two calls of one constructor are not equal).
impl PartialEq for ValuesUDF {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.signature == other.signature
            && Arc::ptr_eq(&self.kernel, &other.kernel)
    }
}

impl Eq for ValuesUDF {}

impl Hash for ValuesUDF {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for ValuesUDF {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kernel.return_type().clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check_types(&args)?;
        let kernel = self.kernel.as_ref();
        // SAFETY: the types were checked against the kernel's; the kernel writes every row.
        unsafe {
            values::invoke(
                &args.args,
                &args.arg_fields,
                args.number_rows,
                kernel.return_type(),
                |values, validity, rows, out| kernel.eval(values, validity, rows, out),
            )
        }
    }
}

/// A function's loop with the types it was written for: `N` arguments, and the loop over rows
/// in `L` ([`Unary`], [`Binary`]).
struct Kernel<const N: usize, L> {
    arg_types: [DataType; N],
    return_type: DataType,
    rows: L,
}

impl<const N: usize, L> Kernel<N, L> {
    fn new(arg_types: [DataType; N], return_type: DataType, rows: L) -> Self {
        Self {
            arg_types,
            return_type,
            rows,
        }
    }
}

/// The loop over rows of a function of `N` arguments.
trait Rows<const N: usize>: Send + Sync {
    /// # Safety
    /// As [`ValuesKernel::eval`], with exactly `N` arguments.
    unsafe fn rows(
        &self,
        args: &[FFI_Values; N],
        validity: FFI_Validity,
        rows: usize,
        out: *mut c_void,
    ) -> Result<()>;
}

impl<const N: usize, L> Debug for Kernel<N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("arg_types", &self.arg_types)
            .field("return_type", &self.return_type)
            .finish()
    }
}

impl<const N: usize, L: Rows<N>> ValuesKernel for Kernel<N, L> {
    fn arg_types(&self) -> &[DataType] {
        &self.arg_types
    }

    fn return_type(&self) -> &DataType {
        &self.return_type
    }

    unsafe fn eval(
        &self,
        args: &[FFI_Values],
        validity: FFI_Validity,
        rows: usize,
        out: *mut c_void,
    ) -> Result<()> {
        let args: &[FFI_Values; N] = args.try_into().map_err(|_| {
            DataFusionError::Internal(format!(
                "a function over values of {N} argument(s) was called with {}",
                args.len()
            ))
        })?;
        // SAFETY: the caller's contract, with `N` arguments.
        unsafe { self.rows.rows(args, validity, rows, out) }
    }
}

/// One argument's values, typed.
#[derive(Clone, Copy)]
enum Column<'a, T> {
    Array(&'a [T]),
    Scalar(T),
}

impl<'a, T: Copy> Column<'a, T> {
    /// # Safety
    /// `values` holds `rows` values of `T` (one for a scalar), aligned for `T`.
    unsafe fn new(values: &FFI_Values, rows: usize) -> Self {
        let first = values.values.cast::<T>();
        match values.scalar {
            // SAFETY: the caller's contract.
            true => Column::Scalar(unsafe { *first }),
            // SAFETY: the caller's contract.
            false => Column::Array(unsafe { std::slice::from_raw_parts(first, rows) }),
        }
    }
}

/// Writes `value(row)` to every row of `out` that `validity` says is valid, and the default
/// value to the others. The row loop both kernels run, one copy per combination of arrays and
/// scalars, so that the compiler sees plain slices.
///
/// # Safety
/// `validity` covers `out.len()` rows.
#[inline]
unsafe fn each_row<O: Default, E: Into<DataFusionError>>(
    validity: FFI_Validity,
    out: &mut [std::mem::MaybeUninit<O>],
    mut value: impl FnMut(usize) -> Result<O, E>,
) -> Result<()> {
    if validity.all_valid() {
        for (row, slot) in out.iter_mut().enumerate() {
            slot.write(value(row).map_err(Into::into)?);
        }
        return Ok(());
    }
    for (row, slot) in out.iter_mut().enumerate() {
        // SAFETY: the caller's contract.
        let valid = unsafe { validity.is_valid(row) };
        slot.write(match valid {
            true => value(row).map_err(Into::into)?,
            false => O::default(),
        });
    }
    Ok(())
}

/// The output of a kernel, typed.
///
/// # Safety
/// `out` has room for `rows` values of `O`, aligned for it.
unsafe fn output<'a, O>(out: *mut c_void, rows: usize) -> &'a mut [std::mem::MaybeUninit<O>] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(out.cast(), rows) }
}

/// `f` over the rows of one argument.
struct Unary<A, O, F> {
    f: F,
    _types: PhantomData<fn(A) -> O>,
}

impl<A, O, F, E> Rows<1> for Unary<A, O, F>
where
    A: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
    F: Fn(A::Native) -> Result<O::Native, E> + Send + Sync,
    E: Into<DataFusionError>,
{
    unsafe fn rows(
        &self,
        [a]: &[FFI_Values; 1],
        validity: FFI_Validity,
        rows: usize,
        out: *mut c_void,
    ) -> Result<()> {
        let f = &self.f;
        // SAFETY: the caller's contract (`ValuesKernel::eval`).
        let (a, out) = unsafe { (Column::<A::Native>::new(a, rows), output(out, rows)) };
        // SAFETY: the caller's contract.
        unsafe {
            match a {
                Column::Array(a) => each_row(validity, out, |i| f(a[i])),
                Column::Scalar(a) => each_row(validity, out, |_| f(a)),
            }
        }
    }
}

/// `f` over the rows of two arguments.
struct Binary<A, B, O, F> {
    f: F,
    _types: PhantomData<fn(A, B) -> O>,
}

impl<A, B, O, F, E> Rows<2> for Binary<A, B, O, F>
where
    A: ArrowPrimitiveType,
    B: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
    F: Fn(A::Native, B::Native) -> Result<O::Native, E> + Send + Sync,
    E: Into<DataFusionError>,
{
    unsafe fn rows(
        &self,
        [a, b]: &[FFI_Values; 2],
        validity: FFI_Validity,
        rows: usize,
        out: *mut c_void,
    ) -> Result<()> {
        let f = &self.f;
        // SAFETY: the caller's contract (`ValuesKernel::eval`).
        let (a, b, out) = unsafe {
            (
                Column::<A::Native>::new(a, rows),
                Column::<B::Native>::new(b, rows),
                output(out, rows),
            )
        };
        // SAFETY: the caller's contract.
        unsafe {
            match (a, b) {
                (Column::Array(a), Column::Array(b)) => each_row(validity, out, |i| f(a[i], b[i])),
                (Column::Array(a), Column::Scalar(b)) => each_row(validity, out, |i| f(a[i], b)),
                (Column::Scalar(a), Column::Array(b)) => each_row(validity, out, |i| f(a, b[i])),
                (Column::Scalar(a), Column::Scalar(b)) => each_row(validity, out, |_| f(a, b)),
            }
        }
    }
}
